"""The Grafana dashboard and the Prometheus alert rules in deploy/ (issue #16 item 9) use only
metrics that ``/metrics`` really exports, with labels those metrics really carry: checked
against an in-process server with an agent, a running and a pending job, a booking on an idle
GPU (flagged ``idle_booking``) and two hours of GPU time."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient
from tests.conftest import FIXED_NOW, admin_client, demo_settings, missing_dependency

from procplan.server import Composed, compose
from procplan.testing import FakeClock

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "procplan-dashboard.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
TOKEN = "ops-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NODE = "gpu-01"
# Recorded by Prometheus itself for every target, not exported by ProcPlan.
PROMETHEUS_OWN = {"up": {"job", "instance"}}
TARGET_LABELS = {"job", "instance"}  # added by Prometheus to every scraped series
PROMQL_WORDS = {
    "sum", "avg", "max", "min", "count", "rate", "increase", "irate", "histogram_quantile",
    "by", "without", "and", "or", "unless", "on", "ignoring", "group_left", "group_right",
    "vector", "bool", "topk", "bottomk", "clamp_min", "clamp_max", "abs", "time", "offset",
}  # fmt: skip
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


@pytest.fixture(scope="module")
def metrics_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``/metrics`` of a server with some data."""
    db = tmp_path_factory.mktemp("metrics") / "metrics.db"
    clock = FakeClock(FIXED_NOW)
    settings = demo_settings(f"sqlite:///{db}", agent_token=TOKEN, idle_booking_minutes=1)
    built = compose(settings, clock=clock)
    try:
        with admin_client(built) as client:
            text = _metrics_with_data(client, built, clock)
    finally:
        built.store.dispose()
    return text


@pytest.fixture(scope="module")
def exported(metrics_text: str) -> dict[str, set[str]]:
    """Every series name ``/metrics`` exports, with the label names it carries."""
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def _metrics_with_data(client: TestClient, built: Composed, clock: FakeClock) -> str:
    devices = [{"index": i, "uuid": f"GPU-{i}", "name": "NVIDIA H100 80GB HBM3",
                "memory_mb": 81559} for i in range(2)]  # fmt: skip
    registered = client.post("/api/v1/agents/register", headers=AUTH, json={
        "node_id": NODE, "hostname": "gpu-01.lab", "address": "10.0.0.5",
        "agent_version": "0.1.0", "interval_s": 2.0, "os_user": "root", "pid": 4242,
        "reader": "fake", "devices": devices,
    })  # fmt: skip
    assert registered.status_code == 200, registered.text
    session = registered.json()["session"]

    def heartbeat() -> None:
        readings = [
            {"index": i, "uuid": f"GPU-{i}", "utilization_pct": 50.0 * (1 - i),
             "memory_used_mb": 1000 * (1 - i), "memory_total_mb": 81559,
             "temperature_c": 40.0, "power_w": 100.0, "mig": False}
            for i in range(2)
        ]  # fmt: skip
        body = {"session": session, "readings": readings, "processes": [], "jobs": [],
                "read_error": None}  # fmt: skip
        reply = client.post(f"/api/v1/agents/{NODE}/heartbeat", headers=AUTH, json=body)
        assert reply.status_code == 200, reply.text

    heartbeat()
    alice, bob = {"X-ProcPlan-User": "alice"}, {"X-ProcPlan-User": "bob"}
    for who, count in ((alice, 1), (bob, 2)):  # alice's runs; bob's waits for GPU 1 back
        job = {"command": ["train"], "node_id": NODE, "gpu_count": count}
        reply = client.post("/api/v1/jobs", headers=who, json=job)
        assert reply.status_code == 201, reply.text
    booking = {"node_id": NODE, "gpu_ids": [f"{NODE}-gpu1"], "start": "2026-11-23T10:00:00Z",
               "end": "2026-11-23T14:00:00Z"}  # fmt: skip
    reply = client.post("/api/v1/bookings", headers={"X-ProcPlan-User": "carol"}, json=booking)
    assert reply.status_code == 201, reply.text
    built.scheduler.run_once()
    for _ in range(3):  # GPU 1 stays idle under carol's booking: flagged after a minute
        clock.advance(60)
        heartbeat()
    built.scheduler.run_once()
    clock.advance(2 * 3600)  # GPU-hours to count
    heartbeat()
    reply = client.get("/metrics")
    assert reply.status_code == 200
    return reply.text


def expressions() -> Iterator[tuple[str, str]]:
    """``(where, PromQL)`` of every dashboard target, template query and alert rule."""
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            found = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query["query"])
            assert found, query
            yield f"variable {variable['name']}", f"sum by ({found[2]}) ({found[1]})"
    try:
        import yaml
    except ImportError:
        missing_dependency("PyYAML is not installed")
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            yield f"alert {rule['alert']}", rule["expr"]


def metrics_and_labels(expr: str) -> tuple[set[str], set[str]]:
    """The metric names an expression reads and the label names it matches or groups by."""
    expr = re.sub(r"\$\{?\w+\}?", "1", expr)  # Grafana's $__range, $node ...
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    labels = set()
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        labels |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
    expr = re.sub(r"\{[^}]*\}", "", expr)
    for grouping in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        labels |= {label.strip() for label in grouping.split(",") if label.strip()}
    expr = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    expr = re.sub(r'"[^"]*"', "", expr)
    words = set(re.findall(r"\b[A-Za-z_:][\w:]*\b", expr))
    return {w for w in words if w not in PROMQL_WORDS and not re.fullmatch(r"\d\w*", w)}, labels


def test_the_files_query_only_exported_metrics_and_labels(exported: dict[str, set[str]]) -> None:
    problems = []
    checked = 0
    for where, expr in expressions():
        metrics, labels = metrics_and_labels(expr)
        assert metrics, f"{where}: no metric in {expr!r}"
        carried = set(TARGET_LABELS)
        for metric in metrics:
            checked += 1
            known = exported.get(metric, PROMETHEUS_OWN.get(metric))
            if known is None:
                problems.append(f"{where}: {metric} is not exported by /metrics")
            else:
                carried |= known
        if labels - carried:
            problems.append(f"{where}: labels {sorted(labels - carried)} not on {sorted(metrics)}")
    assert not problems, "\n".join(problems)
    assert checked >= 25


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    read = " ".join(expr for _, expr in expressions())
    for metric in (
        "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED",  # utilization and memory per node
        "procplan_queue_pending_jobs", "procplan_queue_oldest_pending_seconds",  # queue
        "procplan_job_wait_seconds_bucket",  # waits of started jobs
        'procplan_gpu_flagged{flag="idle_booking"',  # bookings idle
        "procplan_job_gpu_hours_total",  # GPU-hours per tenant
        "procplan_node_up",
    ):  # fmt: skip
        assert metric in read, metric
    alerts = {where for where, _ in expressions() if where.startswith("alert ")}
    assert {"alert ProcPlanNodeOffline", "alert ProcPlanBookedGpuIdle",
            "alert ProcPlanQueueWaitHigh"} <= alerts  # fmt: skip


def test_the_oldest_pending_wait_and_the_idle_flag_are_exported(
    exported: dict[str, set[str]], metrics_text: str
) -> None:
    values = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
    }
    # bob's job was submitted at the start and still waits, 2 h 3 min later.
    oldest = [
        v for (name, _), v in values.items() if name == "procplan_queue_oldest_pending_seconds"
    ]
    assert oldest == [2 * 3600 + 3 * 60]
    idle = (("flag", "idle_booking"), ("gpu", f"{NODE}-gpu1"), ("node", NODE))
    assert values[("procplan_gpu_flagged", idle)] == 1.0
    assert {"node", "gpu", "flag"} <= exported["procplan_gpu_flagged"]
    assert {"user", "tenant"} <= exported["procplan_job_gpu_hours_total"]
