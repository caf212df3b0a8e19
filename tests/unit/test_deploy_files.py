"""The Docker deliverables cannot be run here (no Docker engine); check what can be checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lineage_stream.settings import Settings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SETTINGS = {f"LINEAGE_{name.upper()}" for name in Settings.model_fields}


def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_has_the_stack_the_readme_promises() -> None:
    services = compose()["services"]
    assert set(services) == {"kafka", "neo4j", "worker", "demo-producer", "prometheus", "grafana"}
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["neo4j"]["image"].startswith("neo4j:5.")
    assert services["worker"]["depends_on"]["neo4j"]["condition"] == "service_healthy"
    assert services["demo-producer"]["command"] == ["publish", "--demo"]


@pytest.mark.parametrize("service", ["worker", "demo-producer"])
def test_compose_sets_only_real_settings(service: str) -> None:
    names = set(compose()["services"][service]["environment"])
    assert names <= SETTINGS, f"unknown settings: {sorted(names - SETTINGS)}"


def test_image_runs_the_worker_as_a_non_root_user() -> None:
    lines = (REPO / "Dockerfile").read_text().splitlines()
    user = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert user
    assert user[-1] not in {"0", "root"}
    assert 'ENTRYPOINT ["lineage-stream"]' in lines
