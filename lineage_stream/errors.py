"""Exceptions raised by lineage-stream.

LineageStreamError
├── ConfigurationError      settings that cannot work (bad URI, unreadable *_FILE secret)
├── RejectedEvent           an input that goes to the dead-letter topic, with its reason
└── GraphUnavailable        Neo4j could not be reached or refused the credentials
"""

from __future__ import annotations

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
