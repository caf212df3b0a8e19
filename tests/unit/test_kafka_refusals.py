"""A Kafka login or TLS handshake that cannot succeed is told apart from a broker that is merely
slow, and explained in the worker's setting names (librdkafka's texts as the broker sent them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import KafkaError

from lineage_stream.errors import ConfigurationError
from lineage_stream.kafka_admin import is_refusal, refusal_message
from lineage_stream.settings import Settings

pytestmark = pytest.mark.unit

NO_CLIENT_CERTIFICATE = KafkaError(
    KafkaError._TRANSPORT,
    "ssl://127.0.0.1:12092/bootstrap: Receive failed: error:0A000412:SSL routines::"
    "ssl/tls alert bad certificate: SSL alert number 42 (after 0ms in state APIVERSION_QUERY)",
)
UNVERIFIED_BROKER = KafkaError(
    KafkaError._SSL,
    "ssl://127.0.0.1:12092/bootstrap: SSL handshake failed: error:0A000086:SSL routines::"
    "certificate verify failed: broker certificate could not be verified",
)
CONNECTION_REFUSED = KafkaError(
    KafkaError._TRANSPORT, "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed"
)


def ssl_settings(tmp_path: Path, **extra: Path) -> Settings:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    return Settings(
        kafka_bootstrap_servers="127.0.0.1:12092",
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=ca,
        **extra,
    )


def test_tls_alerts_failed_handshakes_and_logins_are_refusals() -> None:
    login = KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error")
    assert [is_refusal(e) for e in (NO_CLIENT_CERTIFICATE, UNVERIFIED_BROKER, login)] == [
        True,
        True,
        True,
    ]


def test_a_broker_that_is_down_is_no_refusal() -> None:
    assert not is_refusal(CONNECTION_REFUSED)


def test_a_tls_alert_without_a_client_certificate_asks_for_one(tmp_path: Path) -> None:
    message = refusal_message(ssl_settings(tmp_path), NO_CLIENT_CERTIFICATE)
    assert message.startswith("Kafka at 127.0.0.1:12092 refused the connection: ssl://")
    assert message.endswith(
        "the broker may require a client certificate: set LINEAGE_KAFKA_SSL_CERTFILE and "
        "LINEAGE_KAFKA_SSL_KEYFILE"
    )


def test_a_tls_alert_with_a_client_certificate_questions_its_issuer(tmp_path: Path) -> None:
    certificate = tmp_path / "client.crt"
    certificate.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = ssl_settings(tmp_path, kafka_ssl_certfile=certificate)
    message = refusal_message(settings, NO_CLIENT_CERTIFICATE)
    assert message.endswith("is LINEAGE_KAFKA_SSL_CERTFILE signed by a CA the broker trusts?")


def test_an_unverified_broker_certificate_points_at_the_ca_file(tmp_path: Path) -> None:
    message = refusal_message(ssl_settings(tmp_path), UNVERIFIED_BROKER)
    assert message.startswith("the broker certificate of Kafka at 127.0.0.1:12092 cannot be")
    assert message.endswith("LINEAGE_KAFKA_SSL_CAFILE must name the CA that signed it")


def test_an_unreadable_certificate_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"LINEAGE_KAFKA_SSL_KEYFILE=.* cannot be read"):
        ssl_settings(tmp_path, kafka_ssl_keyfile=tmp_path / "missing.key")
