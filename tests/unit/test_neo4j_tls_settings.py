"""Neo4j TLS is chosen by the URI scheme alone: settings keep it as given, and a certificate
that does not verify is reported as such, however deep the driver wraps the `ssl` error."""

from __future__ import annotations

import ssl

import pytest

from lineage_stream.errors import certificate_problem, neo4j_unreachable
from lineage_stream.settings import Settings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "uri",
    [
        "bolt://db:7687",
        "bolt+s://db.example.com:7687",
        "bolt+ssc://127.0.0.1:7687",
        "neo4j+s://abc.databases.neo4j.io",
        "neo4j+ssc://db:7687",
    ],
)
def test_the_uri_scheme_reaches_the_driver_untouched(
    uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINEAGE_NEO4J_URI", uri)
    assert Settings().neo4j_uri == uri


def wrapped_verification_error() -> Exception:
    verification = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verification.verify_message = "self-signed certificate"
    try:
        try:
            raise verification
        except ssl.SSLError as exc:
            raise ConnectionError("security error") from exc
    except ConnectionError as exc:
        try:
            raise OSError("Couldn't connect") from exc
        except OSError as outer:
            return outer


def test_a_wrapped_certificate_refusal_is_recognised_and_explained() -> None:
    error = wrapped_verification_error()
    assert certificate_problem(error) == "self-signed certificate"
    message = str(neo4j_unreachable(error, "bolt+s://db:7687"))
    assert "bolt+s://db:7687" in message
    assert "TLS certificate did not verify (self-signed certificate)" in message
    assert "bolt+ssc://" in message


def test_other_connection_errors_are_reported_as_unreachable() -> None:
    error = OSError("connection refused")
    assert certificate_problem(error) is None
    assert str(neo4j_unreachable(error)) == "Neo4j cannot be reached: connection refused"
