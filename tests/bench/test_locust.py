"""`shopray loadtest` drives real locust traffic and writes its reports."""

import json

import pytest

from shopray.bench.locust import main

pytestmark = pytest.mark.ray


def test_loadtest_writes_reports(serve_url, tmp_path):
    assert main(["--users", "3", "--spawn-rate", "3", "--duration", "8", "--url", serve_url, "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    agg = report["endpoints"]["Aggregated"]
    assert agg["requests"] > 0 and agg["failures"] == 0
    assert {"search", "search hot"} <= set(report["endpoints"])
    # The aggregate is read from locust's own rows: it must agree with the per-endpoint ones.
    endpoints = [e for name, e in report["endpoints"].items() if name != "Aggregated"]
    assert agg["requests"] == sum(e["requests"] for e in endpoints)
    assert min(e["p50_ms"] for e in endpoints) <= agg["p50_ms"] <= max(e["p50_ms"] for e in endpoints)
    assert 0.25 * agg["requests"] / 8 <= report["rps"] <= 4 * agg["requests"] / 8  # about requests over the 8 s run
    assert (tmp_path / "report.html").stat().st_size > 0
    assert (tmp_path / "latency_rps.png").stat().st_size > 0
