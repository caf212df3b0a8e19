"""Fixtures for the real local stack (deploy/local/stack.py): started once per session if it is
not already running, and stopped at the end only if this session started it."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from neo4j import Driver, GraphDatabase

from tests.harness import WorkerProcess, clear_graph, end_workers

REPO = Path(__file__).resolve().parents[1]


def _load_stack() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lineage_stack", REPO / "deploy/local/stack.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lineage_stack"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def stack() -> Iterator[object]:
    """The running stack's Config. A service that cannot start fails the run, never skips it."""
    module = _load_stack()
    config = module.Config.from_env()
    try:
        started = module.up(config, list(module.SERVICES))
    except module.StackError as exc:
        pytest.fail(f"the local stack could not start: {exc}", pytrace=False)
    yield config
    module.down(config, started)


class StackControl:
    """Stops and starts one service of the running stack, for outage tests."""

    def __init__(self, module: ModuleType, config: object) -> None:
        self._module = module
        self._config = config

    def stop(self, service: str) -> None:
        self._module.down(self._config, [service])

    def start(self, service: str) -> None:
        try:
            self._module.up(self._config, [service])
        except self._module.StackError as exc:
            pytest.fail(f"{service} could not restart: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def stack_control(stack: object) -> StackControl:
    return StackControl(sys.modules["lineage_stack"], stack)


@pytest.fixture(scope="session")
def kafka_bootstrap(stack: object) -> str:
    return stack.bootstrap  # type: ignore[attr-defined,no-any-return]


@pytest.fixture(scope="session")
def neo4j_auth(stack: object) -> tuple[str, str]:
    return ("neo4j", stack.password)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def neo4j_uri(stack: object) -> str:
    return stack.bolt_uri  # type: ignore[attr-defined,no-any-return]


@pytest.fixture(scope="session")
def neo4j_driver(neo4j_uri: str, neo4j_auth: tuple[str, str]) -> Iterator[Driver]:
    with GraphDatabase.driver(
        neo4j_uri, auth=neo4j_auth, notifications_min_severity="OFF"
    ) as driver:
        yield driver


@pytest.fixture
def empty_graph(neo4j_driver: Driver) -> Driver:
    """Neo4j community has one user database: tests that read the graph start from empty."""
    clear_graph(neo4j_driver)
    return neo4j_driver


@pytest.fixture(autouse=True)
def no_stray_workers() -> Iterator[None]:
    """Fail a test that leaves a worker running, after killing it."""
    before = set(WorkerProcess.running)
    yield
    if leaked := end_workers(WorkerProcess.running - before):
        pytest.fail(f"the test left workers running (killed now); logs: {leaked}", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def no_workers_after_the_session() -> Iterator[None]:
    yield
    end_workers(WorkerProcess.running)
