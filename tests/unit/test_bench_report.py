"""The benchmark report's latency table: the cores each part of the machine used, where measured."""

from __future__ import annotations

import pytest

from bench.report import latency_table

pytestmark = pytest.mark.unit

LOAD = {
    "sent": 30000,
    "tracked": 3000,
    "seen": 3000,
    "p50_ms": 1899.4,
    "p90_ms": 2843.0,
    "p99_ms": 3445.2,
    "max_ms": 3845.0,
}


def test_cores_are_listed_part_by_part_in_the_header_s_order() -> None:
    cores = {
        "steal": 0.01,
        "machine": 1.78,
        "harness": 0.17,
        "kafka": 0.24,
        "neo4j": 0.62,
        "workers": 0.75,
    }
    row = {**LOAD, "workers": 2, "cpu_cores": cores}

    table = latency_table({"latency": {"small events at 1000/s, 2 workers": row}})

    header, _, line = table.splitlines()
    assert header.endswith("| cores: workers, Neo4j, Kafka, harness, all, stolen |")
    assert line == (
        "| small events at 1000/s | 2 | 30000 | 3000 | 3000 | 1899 | 2843 | 3445 | 3845 "
        "| 0.75, 0.62, 0.24, 0.17, 1.78, 0.01 |"
    )


def test_runs_that_did_not_measure_cores_show_dashes() -> None:
    table = latency_table({"latency": {"small events at 300/s, 1 worker": LOAD}})

    assert table.splitlines()[-1].endswith("| 3845 | -, -, -, -, -, - |")
