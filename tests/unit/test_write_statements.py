"""The write statements and their parameters: what the writer sends for a batch."""

from __future__ import annotations

import random
import re
from datetime import datetime

import pytest

from lineage_stream import cypher
from lineage_stream.graph import GraphBatch, build_batch
from lineage_stream.neo4j_writer import statements
from lineage_stream.openlineage import RunEvent
from lineage_stream.pairing import RunState, fold
from tests.builders import dataproc

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def batch() -> GraphBatch:
    """Every event of a real Spark application: runs, parents, schemas, statistics, lineage."""
    events = [dataproc(n) for n in range(1, 17)]
    states: dict[str, RunState] = {}
    for event in events:
        assert isinstance(event, RunEvent)
        run_id = str(event.run.run_id)
        states[run_id] = fold(states.get(run_id), event)
    return build_batch(events, states.values())


def time_keys(batch: GraphBatch) -> set[str]:
    rows = [row for kind in vars(batch).values() if isinstance(kind, list) for row in kind]
    return {
        key
        for row in rows
        if isinstance(row, dict)
        for key, v in row.items()
        if isinstance(v, datetime)
    }


def test_the_sample_has_timestamps_of_every_kind(batch: GraphBatch) -> None:
    assert {"lastEventAt", "schemaAt", "statsAt", "firstSeenAt", "at"} <= time_keys(batch)


def test_timestamps_travel_as_text_and_every_statement_reads_them_back_as_datetimes(
    batch: GraphBatch,
) -> None:
    times = time_keys(batch)
    sent = statements(batch)
    assert len(sent) >= 10
    for statement, parameters in sent:
        for row in parameters.get("rows", []):
            assert not any(isinstance(value, datetime) for value in row.values())
        read = set(re.findall(r"\brow\.(\w+)", statement))
        parsed = set(re.findall(r"datetime\(wire\.(\w+)\)", statement))
        assert read & times <= parsed, statement


def test_each_statement_gets_exactly_the_row_keys_it_reads(batch: GraphBatch) -> None:
    for statement, parameters in statements(batch):
        if "rows" not in parameters:
            continue
        # The writer finds what a statement reads by these names; any other would get nothing.
        assert re.search(r"UNWIND \$rows AS (row|wire)\n", statement), statement
        read = set(re.findall(r"\b(?:row|wire)\.(\w+)", statement))
        assert read, statement
        for row in parameters.get("rows", []):
            assert row.keys() == read, statement


def test_text_timestamps_keep_their_instant_and_offset(batch: GraphBatch) -> None:
    (_, parameters), *_ = [s for s in statements(batch) if s[0] == cypher.UPSERT_PROCESSES]
    original = {row["runId"]: row for row in batch.processes}
    for row in parameters["rows"]:
        for key in ("firstEventAt", "lastEventAt"):
            assert datetime.fromisoformat(row[key]) == original[row["runId"]][key]
            assert (
                datetime.fromisoformat(row[key]).utcoffset()
                == original[row["runId"]][key].utcoffset()
            )


def test_rows_come_in_lock_order(batch: GraphBatch) -> None:
    shuffled = GraphBatch(
        **{kind: random.Random(kind).sample(rows, len(rows)) for kind, rows in vars(batch).items()}
    )
    sent = dict(statements(shuffled))
    parents = [(r["parentRunId"], r["runId"]) for r in sent[cypher.LINK_PARENTS]["rows"]]
    inputs = [(r["namespace"], r["name"], r["runId"]) for r in sent[cypher.LINK_RUN_INPUTS]["rows"]]
    fields = [(r["namespace"], r["name"], r["field"]) for r in sent[cypher.UPSERT_FIELDS]["rows"]]
    for rows in (parents, inputs, fields):
        assert rows
        assert rows == sorted(rows)


def test_list_parameters_print_as_their_length(batch: GraphBatch) -> None:
    # The driver formats them for a debug line whatever the log level; the integration tests
    # write them through it.
    for _, parameters in statements(batch):
        for value in parameters.values():
            assert isinstance(value, list)
            assert repr(value) == f"<{len(value)} items>"
