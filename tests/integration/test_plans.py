"""Every write statement finds its nodes by a uniqueness constraint, whatever the graph holds.

Neo4j plans a statement on the statistics of the moment and keeps the plan until they change by
three quarters, so a plan made on a young graph serves it for a while. On an empty graph the
statistics favour the other indexes (Process.state, Job.name, Dataset.name): planned there,
counting a parent's failed children seeked every failed run in the graph, and a MATCH on a
job's or dataset's key used the name index. An empty graph is the worst case; real Neo4j must
plan every lookup of every statement as a seek on a uniqueness constraint there.
"""

from __future__ import annotations

from typing import Any

import pytest
from neo4j import Driver

from lineage_stream import cypher

pytestmark = pytest.mark.integration

# Each write statement, and the alias lookup inside the write transaction, UNWINDs its rows.
WRITES = {
    name: statement
    for name, statement in vars(cypher).items()
    if name.isupper() and isinstance(statement, str) and statement.lstrip().startswith("UNWIND")
}


def operators(plan: dict[str, Any]) -> list[str]:
    found = [plan["operatorType"].split("@")[0]]
    for child in plan.get("children", []):
        found += operators(child)
    return found


def looks_up(operator: str) -> bool:
    """Seeks and scans: the operators that find nodes or relationships without expanding."""
    return "Seek" in operator or "Scan" in operator


def test_every_write_statement_is_checked() -> None:
    assert set(WRITES) == {
        "RESOLVE_ALIASES",
        "UPSERT_JOBS",
        "UPSERT_DATASETS",
        "MERGE_LOCATION_NODES",
        "UPSERT_PROCESSES",
        "LINK_PARENTS",
        "COUNT_FAILED_CHILDREN",
        "LINK_RUN_INPUTS",
        "LINK_RUN_OUTPUTS",
        "UPDATE_LAST_WRITTEN",
        "UPDATE_JOB_LAST_RUN",
        "LINK_JOB_INPUTS",
        "LINK_JOB_OUTPUTS",
        "UPSERT_FIELDS",
        "LINK_DERIVATIONS",
    }


@pytest.mark.parametrize("name", sorted(WRITES))
def test_planned_on_an_empty_graph_it_seeks_by_unique_keys(empty_graph: Driver, name: str) -> None:
    for statement in cypher.SCHEMA:
        empty_graph.execute_query(statement)
    empty_graph.execute_query("CALL db.awaitIndexes(300)")
    with empty_graph.session() as session:
        # replan=force: a plan cached by an earlier test was made on another graph.
        planned = session.run("CYPHER replan=force EXPLAIN " + WRITES[name]).consume()
    assert planned.plan is not None
    lookups = {operator for operator in operators(planned.plan) if looks_up(operator)}
    assert lookups, f"{name}: no lookup in its plan"
    assert lookups <= {"NodeUniqueIndexSeek", "NodeUniqueIndexSeek(Locking)"}, (
        f"{name} finds nodes with {sorted(lookups)}"
    )
