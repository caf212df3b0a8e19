"""Dead-letter sink: the original bytes plus headers that say why and where they came from."""

from __future__ import annotations

from typing import Any

from lineage_stream.pipeline import Rejection

MAX_DETAIL_CHARS = 2000


def dead_letter_headers(rejection: Rejection) -> list[tuple[str, bytes]]:
    message = rejection.message
    return [
        ("lineage.error.reason", rejection.error.reason.value.encode()),
        ("lineage.error.detail", rejection.error.detail[:MAX_DETAIL_CHARS].encode()),
        ("lineage.source.topic", message.topic.encode()),
        ("lineage.source.partition", str(message.partition).encode()),
        ("lineage.source.offset", str(message.offset).encode()),
    ]


class DeadLetterSink:
    """Sends through the Faust app's producer and waits for the broker's acknowledgement."""

    def __init__(self, app: Any, topic: str) -> None:
        self._app = app
        self._topic = topic

    async def send(self, rejection: Rejection) -> None:
        await self._app.producer.send_and_wait(
            self._topic,
            None,
            rejection.message.value,
            None,
            None,
            dead_letter_headers(rejection),
        )
