"""Kafka set-up the worker needs before Faust starts: topics and their partition counts."""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from lineage_stream.errors import ConfigurationError
from lineage_stream.settings import Settings

DLQ_MAX_MESSAGE_BYTES = 32 * 1024 * 1024
TICK_RETENTION_MS = 60 * 60 * 1000
# librdkafka writes its own log lines to stderr, which would break JSON logs (LINEAGE_LOG_FORMAT)
# and ignore LINEAGE_LOG_LEVEL; given a logger, it hands them to Python logging instead.
LIBRDKAFKA_LOGGER = logging.getLogger("librdkafka")


def client_config(settings: Settings) -> dict[str, Any]:
    """librdkafka settings for the configured brokers and security."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "security.protocol": settings.kafka_security_protocol,
        "logger": LIBRDKAFKA_LOGGER,
    }
    if settings.kafka_sasl_mechanism:
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
        config["sasl.username"] = settings.kafka_sasl_username or ""
        password = settings.kafka_sasl_password
        config["sasl.password"] = password.get_secret_value() if password else ""
    for key, path in (
        ("ssl.ca.location", settings.kafka_ssl_cafile),
        ("ssl.certificate.location", settings.kafka_ssl_certfile),
        ("ssl.key.location", settings.kafka_ssl_keyfile),
    ):
        if path is not None:
            config[key] = str(path)
    return config


def is_refusal(error: KafkaError) -> bool:
    """A refused login or TLS handshake: retrying with the same settings cannot succeed."""
    if error.code() in (KafkaError._AUTHENTICATION, KafkaError._SSL):
        return True
    # A broker that rejects the client's certificate (or its absence) sends a TLS alert, which
    # librdkafka reports as a failed receive.
    return error.code() == KafkaError._TRANSPORT and "ssl/tls alert" in error.str()


def refusal_message(settings: Settings, error: KafkaError) -> str:
    """What went wrong, in the worker's own setting names rather than librdkafka's."""
    where = f"Kafka at {settings.kafka_bootstrap_servers}"
    reason = error.str()
    if "certificate verify failed" in reason:
        return (
            f"the broker certificate of {where} cannot be verified: {reason}; "
            "LINEAGE_KAFKA_SSL_CAFILE must name the CA that signed it"
        )
    if "ssl/tls alert" in reason and settings.kafka_ssl_certfile is None:
        return (
            f"{where} refused the connection: {reason}; the broker may require a client "
            "certificate: set LINEAGE_KAFKA_SSL_CERTFILE and LINEAGE_KAFKA_SSL_KEYFILE"
        )
    if "ssl/tls alert" in reason:
        return (
            f"{where} refused the connection: {reason}; is LINEAGE_KAFKA_SSL_CERTFILE "
            "signed by a CA the broker trusts?"
        )
    return f"{where} refused the connection: {reason}"


def tick_topic_name(settings: Settings) -> str:
    return f"{settings.consumer_group}-ticks"


def by_run_topic_name(settings: Settings) -> str:
    return f"{settings.consumer_group}-by-run"


def prepare_topics(settings: Settings, timeout_s: float = 30.0) -> int:
    """Create the source, dead-letter and tick topics if missing; return the source partitions."""
    refusals: list[KafkaError] = []

    def note_refusal(error: KafkaError) -> None:
        if is_refusal(error):
            refusals.append(error)

    config: dict[str, Any] = {**client_config(settings), "error_cb": note_refusal}
    try:
        admin = AdminClient(config)
    except KafkaException as exc:
        # e.g. a key that does not match its certificate, or a file that is no PEM
        raise ConfigurationError(f"invalid Kafka client settings: {exc.args[0].str()}") from exc
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            # Short waits: librdkafka logs every failed attempt, tens a second for TLS refusals.
            metadata = admin.list_topics(timeout=min(0.5, max(0.1, deadline - time.monotonic())))
            break
        except KafkaException as exc:
            # librdkafka reports a refused login or handshake only through error_cb (served by
            # poll) and keeps retrying it, so a short wait is repeated until it is known refused.
            admin.poll(0)
            timed_out = exc.args[0].code() == KafkaError._TIMED_OUT
            if refusals or not timed_out or time.monotonic() >= deadline:
                if refusals:
                    raise ConfigurationError(refusal_message(settings, refusals[-1])) from exc
                raise ConfigurationError(
                    f"Kafka at {settings.kafka_bootstrap_servers} did not answer: {exc.args[0]}"
                ) from exc
    existing = metadata.topics
    if settings.topic not in existing:
        _create(admin, NewTopic(settings.topic, num_partitions=settings.topic_partitions))
        partitions = settings.topic_partitions
    else:
        partitions = len(existing[settings.topic].partitions)
    wanted = [
        NewTopic(
            settings.dlq_topic,
            num_partitions=1,
            config={"max.message.bytes": str(DLQ_MAX_MESSAGE_BYTES)},
        ),
        NewTopic(
            tick_topic_name(settings),
            num_partitions=partitions,
            config={"retention.ms": str(TICK_RETENTION_MS)},
        ),
    ]
    if settings.repartition_by_run:
        wanted.append(
            NewTopic(
                by_run_topic_name(settings),
                num_partitions=partitions,
                config={"max.message.bytes": str(DLQ_MAX_MESSAGE_BYTES)},
            )
        )
    for topic in wanted:
        if topic.topic not in existing:
            _create(admin, topic)
    # Faust pairs the source's partitions with the pairing table's changelog partitions.
    internal = [tick_topic_name(settings)]
    if settings.repartition_by_run:
        internal.append(by_run_topic_name(settings))
    for name in internal:
        found = existing.get(name)
        if found is not None and len(found.partitions) != partitions:
            raise ConfigurationError(
                f"topic {name} has {len(found.partitions)} partitions but "
                f"{settings.topic} has {partitions}; delete it and restart the worker"
            )
    return partitions


def _create(admin: AdminClient, topic: NewTopic) -> None:
    futures = admin.create_topics([topic], request_timeout=30)
    try:
        futures[topic.topic].result()
    except KafkaException as exc:
        if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
            raise ConfigurationError(f"cannot create topic {topic.topic}: {exc.args[0]}") from exc
