"""Kubernetes, Prometheus and Grafana files cannot be applied here (no cluster, no promtool);
check that they agree with the code: metrics shown, health paths, port, settings. Their schemas
and PromQL syntax: test_deploy_schemas."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import lineage_stream.metrics  # noqa: F401  (registers the metrics)
from lineage_stream.operations import Operations
from lineage_stream.settings import Settings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy/kubernetes"
SETTINGS = {f"LINEAGE_{name.upper()}" for name in Settings.model_fields}
METRIC = re.compile(r"\blineage_stream_[a-z0-9_]+")


def manifests() -> dict[str, dict[str, Any]]:
    """Kubernetes objects by kind."""
    objects = {}
    for path in sorted(K8S.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        objects[document["kind"]] = document
    return objects


def alert_rules() -> list[dict[str, Any]]:
    rules = yaml.safe_load((REPO / "deploy/prometheus/alerts.yml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return json.loads((REPO / "deploy/grafana/dashboards/lineage-stream.json").read_text())


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel["targets"]]


def health_paths() -> set[str]:
    routes = Operations(
        app=None, driver=None, source_topics=set(), committed_offset=lambda _: None
    ).routes()  # type: ignore[arg-type]
    return {resource.canonical for resource in routes.router.resources()}


def test_every_metric_is_shown_on_the_dashboard() -> None:
    shown = {name for expr in dashboard_exprs() for name in METRIC.findall(expr)}
    families = {f.name for f in REGISTRY.collect() if f.name.startswith("lineage_stream_")}
    missing = {f for f in families if not any(name.startswith(f) for name in shown)}
    assert not missing


def test_alert_rules_are_complete() -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} >= {
        "LineageStreamLagGrowing",
        "LineageStreamNoWrites",
        "LineageStreamDeadLetters",
        "LineageStreamAbandonedRunsSpike",
    }
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]


def test_probes_use_the_workers_health_endpoints_and_port() -> None:
    objects = manifests()
    container = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    port = Settings.model_fields["metrics_port"].default
    assert container["ports"] == [{"name": "metrics", "containerPort": port}]
    assert objects["ConfigMap"]["data"]["LINEAGE_METRICS_PORT"] == str(port)
    probes = {
        kind: (container[kind]["httpGet"]["path"], container[kind]["httpGet"]["port"])
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes == {
        "startupProbe": ("/healthz", "metrics"),
        "livenessProbe": ("/healthz", "metrics"),
        "readinessProbe": ("/readyz", "metrics"),
    }
    assert {"/healthz", "/readyz", "/metrics"} == health_paths()
    assert objects["ServiceMonitor"]["spec"]["endpoints"][0]["path"] == "/metrics"


def test_deployment_sets_only_real_settings_and_reads_secrets_from_files() -> None:
    objects = manifests()
    assert set(objects["ConfigMap"]["data"]) <= SETTINGS
    spec = objects["Deployment"]["spec"]["template"]["spec"]
    env = {item["name"]: item["value"] for item in spec["containers"][0]["env"]}
    assert set(env) <= SETTINGS
    assert all(name.endswith("_FILE") for name in env)
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "secrets")
    secret = objects["Secret"]
    secret_volume = next(v for v in spec["volumes"] if v["name"] == "secrets")
    assert secret_volume["secret"]["secretName"] == secret["metadata"]["name"]
    assert {Path(path).name for path in env.values()} == set(secret["stringData"])
    assert all(path.startswith(mount["mountPath"] + "/") for path in env.values())


def test_replicas_never_exceed_partitions_and_selectors_match_the_pods() -> None:
    objects = manifests()
    deployment = objects["Deployment"]["spec"]
    assert 1 <= deployment["replicas"] <= Settings.model_fields["topic_partitions"].default
    pod_labels = deployment["template"]["metadata"]["labels"]
    for kind in ("Deployment", "PodDisruptionBudget"):
        assert objects[kind]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert objects["Service"]["spec"]["selector"].items() <= pod_labels.items()
    service_labels = objects["Service"]["metadata"]["labels"]
    assert objects["ServiceMonitor"]["spec"]["selector"]["matchLabels"].items() <= (
        service_labels.items()
    )
    assert (
        objects["ServiceMonitor"]["spec"]["endpoints"][0]["port"]
        == (objects["Service"]["spec"]["ports"][0]["name"])
    )


def test_kustomization_lists_existing_files_and_leaves_the_example_secret_out() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert all((K8S / name).is_file() for name in listed)
    present = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert present - listed == {"secret.example.yaml"}


def test_compose_prometheus_scrapes_the_worker_and_grafana_finds_the_dashboard() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    mounts = {
        service: dict(volume.split(":")[:2] for volume in services[service]["volumes"])
        for service in ("prometheus", "grafana")
    }
    for sources in mounts.values():
        assert all((REPO / source).exists() for source in sources)
    prometheus = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    assert mounts["prometheus"]["./deploy/prometheus/alerts.yml"] in prometheus["rule_files"]
    job = prometheus["scrape_configs"][0]
    port = services["worker"]["environment"]["LINEAGE_METRICS_PORT"]
    assert job["static_configs"][0]["targets"] == [f"worker:{port}"]
    assert any(f'job="{job["job_name"]}"' in rule["expr"] for rule in alert_rules())
    provisioning = REPO / "deploy/grafana/provisioning"
    provider = yaml.safe_load((provisioning / "dashboards/lineage-stream.yml").read_text())
    assert (
        provider["providers"][0]["options"]["path"]
        == (mounts["grafana"]["./deploy/grafana/dashboards"])
    )
    datasource = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())
    uids = {panel["datasource"]["uid"] for panel in dashboard()["panels"]}
    assert uids == {datasource["datasources"][0]["uid"]}
