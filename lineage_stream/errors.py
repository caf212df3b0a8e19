"""Exceptions raised by lineage-stream.

LineageStreamError
├── ConfigurationError      settings that cannot work (bad URI, unreadable *_FILE secret)
├── RejectedEvent           an input that goes to the dead-letter topic, with its reason
└── GraphUnavailable        Neo4j could not be reached, refused the credentials, or its
                            TLS certificate did not verify
"""

from __future__ import annotations

import ssl
from enum import StrEnum


class RejectReason(StrEnum):
    """Why an input went to the dead-letter topic (the `lineage.error.reason` header)."""

    TOO_LARGE = "too_large"
    NOT_JSON = "not_json"
    INVALID_EVENT = "invalid_event"
    UNSUPPORTED = "unsupported"


class LineageStreamError(Exception):
    """Root of every exception lineage-stream raises on purpose."""


class ConfigurationError(LineageStreamError):
    """A setting is missing, malformed, or points at something unusable."""


class RejectedEvent(LineageStreamError):
    """An input is not an OpenLineage event lineage-stream can ingest."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class GraphUnavailable(LineageStreamError):
    """Neo4j cannot be used right now (down, unreachable, or authentication failed)."""


def certificate_problem(exc: BaseException) -> str | None:
    """Why TLS verification refused the server's certificate, if that is what `exc` comes from
    (the driver wraps the `ssl` error in its own errors)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause.verify_message or str(cause)
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def neo4j_unreachable(exc: BaseException, uri: str | None = None) -> GraphUnavailable:
    """The error to report for a Neo4j that cannot be used, saying what to do when it is TLS."""
    where = "Neo4j" if uri is None else f"Neo4j at {uri}"
    problem = certificate_problem(exc)
    if problem is None:
        return GraphUnavailable(f"{where} cannot be reached: {exc}")
    return GraphUnavailable(
        f"{where}: its TLS certificate did not verify ({problem}). For a self-signed "
        "certificate use bolt+ssc:// or neo4j+ssc://, or trust its CA (SSL_CERT_FILE)."
    )
