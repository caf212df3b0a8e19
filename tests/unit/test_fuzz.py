"""Fuzzing the data path: any bytes, and any OpenLineage-shaped JSON, are either accepted and
turned into graph rows, or rejected with a dead-letter reason; nothing else ever escapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lineage_stream.errors import RejectedEvent, RejectReason
from lineage_stream.graph import build_batch
from lineage_stream.openlineage import RunEvent, parse
from lineage_stream.pairing import fold
from tests.builders import dataset, run_event

pytestmark = pytest.mark.unit

NOW = datetime(2026, 6, 1, tzinfo=UTC)
LIMIT = 64 * 1024

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
names = st.sampled_from(["x'}) DETACH DELETE n //", "a\x00b", "📦"]) | st.text(
    min_size=1, max_size=30
)
recent_times = st.datetimes(
    min_value=datetime(2026, 5, 1), max_value=datetime(2026, 6, 1), timezones=st.just(UTC)
).map(datetime.isoformat)
# Places a producer gets wrong, each set to an arbitrary JSON value (or removed).
MUTABLE_PATHS = [
    ("eventType",),
    ("eventTime",),
    ("run",),
    ("run", "runId"),
    ("run", "facets"),
    ("job",),
    ("job", "namespace"),
    ("job", "name"),
    ("inputs",),
    ("outputs",),
    ("schemaURL",),
]
mutations = st.lists(
    st.tuples(st.sampled_from(MUTABLE_PATHS), st.just(None) | json_values), max_size=2
)


def mutate(document: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    *parents, leaf = path
    target: Any = document
    for key in parents:
        target = target.get(key) if isinstance(target, dict) else None
    if isinstance(target, dict):
        if value is None:
            target.pop(leaf, None)
        else:
            target[leaf] = value


def accepted_or_rejected(raw: bytes) -> None:
    """The property: parse either gives an event the rest of the path can use, or a reason."""
    rejection: RejectedEvent | None = None
    try:
        event = parse(raw, max_bytes=LIMIT, now=NOW)
    except RejectedEvent as error:
        rejection = error
    if rejection is not None:
        assert rejection.reason in set(RejectReason)
        assert rejection.detail
        return
    states = [fold(None, event)] if isinstance(event, RunEvent) else []
    build_batch([event], states)


@given(st.binary(max_size=512))
def test_any_bytes_are_accepted_or_rejected_with_a_reason(raw: bytes) -> None:
    accepted_or_rejected(raw)


def shaped_dataset() -> st.SearchStrategy[Any]:
    return (
        st.builds(
            dataset,
            ns=names,
            name=names,
            fields=st.none() | st.lists(names, max_size=4),
            symlink=st.none() | st.tuples(names, names),
            column_lineage=st.none()
            | st.dictionaries(
                names, st.lists(st.tuples(names, names, names), max_size=2), max_size=2
            ),
        )
        | json_values
    )


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    event_type=st.sampled_from(["START", "RUNNING", "COMPLETE", "FAIL", "ABORT", "OTHER"]),
    run_id=st.uuids().map(str),
    job=st.tuples(names, names),
    at=recent_times,
    inputs=st.lists(shaped_dataset(), max_size=3),
    outputs=st.lists(shaped_dataset(), max_size=3),
    error=st.none() | names,
    facets=st.dictionaries(st.text(max_size=12), json_values, max_size=3),
    changes=mutations,
)
def test_openlineage_shaped_json_is_accepted_or_rejected_with_a_reason(
    event_type: str,
    run_id: str,
    job: tuple[str, str],
    at: str,
    inputs: list[Any],
    outputs: list[Any],
    error: str | None,
    facets: dict[str, Any],
    changes: list[tuple[tuple[str, ...], Any]],
) -> None:
    document = run_event(
        event_type=event_type,
        run_id=run_id,
        job=job,
        at=at,
        inputs=inputs,
        outputs=outputs,
        error_message=error,
    )
    document["run"]["facets"].update(facets)
    for path, value in changes:
        mutate(document, path, value)
    # The standard encoder: it writes what orjson refuses (integers beyond 64 bits, NaN).
    accepted_or_rejected(json.dumps(document).encode())


def test_a_well_formed_event_passes_the_property_as_accepted() -> None:
    # Guards the fuzz tests against a parse that rejects everything.
    at = (NOW - timedelta(hours=1)).isoformat()
    document = run_event("COMPLETE", at=at, outputs=[dataset("s3://b", "/t", fields=["id"])])
    event = parse(orjson.dumps(document), max_bytes=LIMIT, now=NOW)
    assert isinstance(event, RunEvent)
    accepted_or_rejected(orjson.dumps(document))
