"""The deployment files against the schemas of the tools that will read them.

- Kubernetes manifests: the Kubernetes OpenAPI-derived JSON schemas bundled by
  `kubernetes-validate`, strict (unknown fields refused), for the oldest and newest Kubernetes
  release it bundles. The Kustomization is kustomize's own format, not in those schemas;
  test_operations_files checks what it lists.
- ServiceMonitor (a CRD): the prometheus-operator CRD schema as generated into pydantic models by
  `cloudcoil-models-prometheus-operator` (patterns, enums and required fields come from the
  CRD's OpenAPI schema); those models ignore unknown fields, so a round trip must give the
  file back unchanged.
- PromQL in alerts.yml and the Grafana dashboard: parsed by `promql-parser` (a Rust port of
  Prometheus' parser). promtool itself is not used: `go install` of it took far longer than a
  `make install` may (docs/deployment-checks.md).
- docker-compose.yml: the Compose Specification's JSON schema (tests/schemas/README.md says
  where it comes from). `docker compose config` needs a Docker engine, not available here.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY

import lineage_stream.metrics  # noqa: F401  (registers the metrics)

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy/kubernetes"
OLDEST_KUBERNETES = "1.25.0"
# Prometheus' own series an alert may use besides ours.
PROMETHEUS_SERIES = {"up"}
RULE_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def kubernetes_objects() -> dict[str, dict[str, Any]]:
    objects = {}
    for path in sorted(K8S.glob("*.yaml")):
        document = load_yaml(path)
        if document["kind"] not in {"Kustomization", "ServiceMonitor"}:
            objects[path.name] = document
    return objects


def defined_series() -> set[str]:
    """Every series name lineage_stream.metrics exports."""
    names = set()
    for family in REGISTRY.collect():
        if not family.name.startswith("lineage_stream_"):
            continue
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in HISTOGRAM_SERIES)
        else:
            names.add(family.name)
    return names


def selected_series(expr: str) -> set[str]:
    """The metric names an expression selects; raises ValueError if it does not parse."""
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def alert_rules() -> list[dict[str, Any]]:
    groups = load_yaml(REPO / "deploy/prometheus/alerts.yml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads((REPO / "deploy/grafana/dashboards/lineage-stream.json").read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, kubernetes_validate.latest_version()])
@pytest.mark.parametrize("name", sorted(kubernetes_objects()))
def test_kubernetes_manifest_matches_the_schema(name: str, version: str) -> None:
    kubernetes_validate.validate(kubernetes_objects()[name], version, strict=True)


def test_the_kubernetes_schemas_refuse_a_mistake() -> None:
    deployment = copy.deepcopy(kubernetes_objects()["deployment.yaml"])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, OLDEST_KUBERNETES, strict=True)


def service_monitor() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(K8S / "servicemonitor.yaml")
    return document


def validate_service_monitor(document: dict[str, Any]) -> dict[str, Any]:
    from cloudcoil.models.prometheus_operator.v1 import ServiceMonitor

    model = ServiceMonitor.model_validate(document)
    dumped: dict[str, Any] = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
    return dumped


def test_service_monitor_matches_the_prometheus_operator_crd() -> None:
    assert validate_service_monitor(service_monitor()) == service_monitor()


@pytest.mark.parametrize(
    "mistake",
    [
        lambda doc: doc["spec"]["endpoints"][0].update(interval="30 seconds"),
        lambda doc: doc["spec"]["endpoints"][0].update(scheme="tcp"),
        lambda doc: doc["spec"].pop("selector"),
    ],
    ids=["interval", "scheme", "selector"],
)
def test_the_crd_schema_refuses_a_mistake(mistake: Callable[[dict[str, Any]], object]) -> None:
    document = copy.deepcopy(service_monitor())
    mistake(document)
    with pytest.raises(ValueError, match="validation error"):
        validate_service_monitor(document)


def test_an_unknown_service_monitor_field_does_not_survive_the_round_trip() -> None:
    document = copy.deepcopy(service_monitor())
    document["spec"]["endpoints"][0]["scrapeInterval"] = "30s"
    assert validate_service_monitor(document) != document


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_alert_rule_parses_and_uses_known_series(rule: dict[str, Any]) -> None:
    assert set(rule) <= RULE_KEYS
    assert rule["alert"].isidentifier()
    if "for" in rule:
        promql_parser.parse_duration(rule["for"])
    unknown = selected_series(rule["expr"]) - defined_series() - PROMETHEUS_SERIES
    assert not unknown


@pytest.mark.parametrize(("title", "expr"), dashboard_exprs(), ids=lambda v: str(v)[:40])
def test_dashboard_query_parses_and_uses_series_the_worker_exports(title: str, expr: str) -> None:
    series = selected_series(expr)
    assert series, f"{title}: selects no series"
    assert series <= defined_series()


@pytest.mark.parametrize(
    "expr",
    ["sum(rate(lineage_stream_dlq_events_total[5m])", "rate(lineage_stream_dlq_events_total)"],
)
def test_the_promql_parser_refuses_a_broken_query(expr: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  (the parser's one error type)
        selected_series(expr)


def compose_validator() -> jsonschema.Draft201909Validator:
    # The file names draft 2019-09 by a URI with a trailing '#', which jsonschema does not map.
    schema = json.loads((REPO / "tests/schemas/compose-spec.json").read_text())
    assert schema["$schema"].startswith("http://json-schema.org/draft/2019-09/schema")
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


def test_compose_file_matches_the_compose_specification() -> None:
    document = load_yaml(REPO / "docker-compose.yml")
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in compose_validator().iter_errors(document)
    ]
    assert not errors


def test_the_compose_schema_refuses_a_mistake() -> None:
    document = load_yaml(REPO / "docker-compose.yml")
    document["services"]["worker"]["depends_on"]["neo4j"]["condition"] = "service_ready"
    document["services"]["worker"]["restart_policy"] = "always"
    paths = {
        "/".join(map(str, error.absolute_path))
        for error in compose_validator().iter_errors(document)
    }
    assert {"services/worker/depends_on", "services/worker"} <= paths
