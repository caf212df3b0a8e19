"""Log output: Faust's own text format, or one JSON object per line (LINEAGE_LOG_FORMAT=json).

JSON lines carry `time` (ISO 8601, UTC), `level`, `logger` and `message`, plus whatever context
a call passes as `extra` (topic, partition, offset, runIds, reason...), so a log pipeline can
filter on them without parsing messages.

Secrets: settings hold passwords as `SecretStr` and no message formats the settings object, but
libraries log what they send (aiokafka's debug lines show a SASL/PLAIN request, password
included), so every record also passes a filter that blanks the configured passwords out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from mode.utils.logging import DEFAULT_FORMATTERS, setup_logging

from lineage_stream.settings import Settings

REDACTED = "**********"

JSON_FORMATTER = {
    "()": "pythonjsonlogger.json.JsonFormatter",
    "fmt": "%(levelname)s %(name)s %(message)s",
    "rename_fields": {"levelname": "level", "name": "logger"},
    "timestamp": "time",
}


class RedactSecrets(logging.Filter):
    """Replaces each secret, as text or as it shows inside a bytes repr, in messages and
    tracebacks."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        forms = {form for secret in secrets for form in (secret, repr(secret.encode())[2:-1])}
        # Longest first, so a secret containing another is blanked whole.
        self._forms = sorted((form for form in forms if form), key=len, reverse=True)

    def redact(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._forms:
            return True
        try:
            message = record.getMessage()
        except Exception:
            return True  # a malformed call: the handler reports it, as without this filter
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info:
            traceback = record.exc_text or logging.Formatter().formatException(record.exc_info)
            redacted = self.redact(traceback)
            if redacted != traceback:
                # Formatters render exc_info afresh; exc_text is what they print without it.
                record.exc_info, record.exc_text = None, redacted
        return True


def configured_secrets(settings: Settings) -> list[str]:
    """Passwords the operator set. The built-in development default is public (README) and is
    also the project's name, which would blank out ordinary messages."""
    chosen = settings.model_fields_set
    secrets = []
    if {"neo4j_password", "neo4j_password_file"} & chosen:
        secrets.append(settings.neo4j_password.get_secret_value())
    if settings.kafka_sasl_password is not None:
        secrets.append(settings.kafka_sasl_password.get_secret_value())
    return secrets


def logging_config(settings: Settings) -> dict[str, Any]:
    """The dictConfig for the worker: before Faust starts, and Faust's own worker again."""
    text = settings.log_format == "text"
    handler = (
        # Faust's default handler: colours only on a terminal.
        {"class": "colorlog.StreamHandler", "formatter": "colored"}
        if text
        else {"class": "logging.StreamHandler", "formatter": "json"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": DEFAULT_FORMATTERS if text else {"json": JSON_FORMATTER},
        "filters": {
            "redact": {"()": RedactSecrets, "secrets": configured_secrets(settings)},
        },
        "handlers": {
            # stderr, where Faust's text lines have always gone.
            "default": {**handler, "filters": ["redact"], "stream": "ext://sys.stderr"},
        },
        "root": {"level": settings.log_level.upper(), "handlers": ["default"]},
    }


def configure_logging(settings: Settings) -> None:
    """Set up logging before Faust starts, as Faust will, so start-up lines look the same."""
    setup_logging(loglevel=settings.log_level, logging_config=logging_config(settings))
    # The driver's INFO lines are per connection; its warnings still matter.
    logging.getLogger("neo4j").setLevel(logging.WARNING)
