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
    assert agg["p50_ms"] is not None and agg["p99_ms"] >= agg["p50_ms"]
    assert {"search", "search hot"} <= set(report["endpoints"])
    assert (tmp_path / "report.html").stat().st_size > 0
    assert (tmp_path / "latency_rps.png").stat().st_size > 0
