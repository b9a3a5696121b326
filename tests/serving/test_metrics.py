"""Metrics on Ray's Prometheus endpoint, and one request followed through every stage's JSON log."""

import json
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.ray

EXPECTED_METRICS = [
    'ray_shopray_stage_latency_ms_bucket{',
    'stage="retrieve"',
    'stage="total"',
    "ray_shopray_candidates_bucket{",
    'ray_shopray_requests_total{',
    "ray_shopray_index_version_info{",
    "ray_shopray_ranker_batch_size_bucket{",
]


def test_prometheus_endpoint_exports_stage_metrics(serve_url, metrics_port):
    with httpx.Client(base_url=serve_url, timeout=60) as client:
        for q in ("red running shoes", "cordless drill under 200", "headphones"):
            assert client.post("/search", json={"query": q}).status_code == 200
    deadline = time.monotonic() + 90  # Ray exports metrics every few seconds
    text = ""
    while time.monotonic() < deadline:
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        if all(m in text for m in EXPECTED_METRICS):
            break
        time.sleep(3)
    missing = [m for m in EXPECTED_METRICS if m not in text]
    assert not missing, f"missing from /metrics: {missing}"
    artifact = Path(__file__).resolve().parents[2] / "artifacts" / "metrics-scrape.txt"
    artifact.parent.mkdir(exist_ok=True)
    artifact.write_text("\n".join(line for line in text.splitlines() if line.startswith("ray_shopray")) + "\n")


def test_request_id_appears_in_every_stage_log(serve_url):
    import ray

    request_id = f"trace-{time.time_ns()}"
    resp = httpx.post(f"{serve_url}/search", json={"query": "blue hoodie"}, headers={"X-Request-ID": request_id}, timeout=60)
    assert resp.headers["x-request-id"] == request_id
    logs = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs" / "serve"
    wanted = {"SearchIngress", "QueryParser", "Retriever", "Ranker"}  # the diversifier runs in the ingress (graph.in_ingress)
    found: dict[str, dict] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and set(found) != wanted:
        for path in logs.glob("replica_*.log"):
            for line in path.read_text(errors="replace").splitlines():
                if request_id in line:
                    record = json.loads(line)
                    found[record["deployment"].split("_", 1)[-1]] = record
        time.sleep(1)
    assert set(found) == wanted, f"request id seen only in {sorted(found)}"
    assert all(r["request_id"] == request_id for r in found.values())


def test_dashboard_is_generated_and_uses_declared_metrics():
    import importlib.util
    import re

    repo = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("grafana_dashboard", repo / "deployments" / "grafana_dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    on_disk = json.loads((repo / "deployments" / "grafana-dashboard.json").read_text())
    assert on_disk == module.DASHBOARD, "run: .venv/bin/python deployments/grafana_dashboard.py"

    sources = "\n".join(p.read_text() for p in (repo / "platform" / "shopray").rglob("*.py"))
    used = set(re.findall(r"ray_(shopray_[a-z_]+?)(?:_bucket|_sum|_count|_total)?\b", json.dumps(on_disk)))
    undeclared = [m for m in used if f'"{m}"' not in sources and f'"{m}_total"' not in sources]
    assert not undeclared, f"dashboard uses metrics no code declares: {undeclared}"
