"""Generate deployments/grafana-dashboard.json from the metric names shopray exports.

    .venv/bin/python deployments/grafana_dashboard.py   # rewrites the JSON beside it
"""

import json
from pathlib import Path

DS = {"type": "prometheus", "uid": "${datasource}"}


def panel(pid: int, title: str, exprs: list[tuple[str, str]], unit: str, x: int, y: int, w: int = 12) -> dict:
    return {
        "id": pid,
        "type": "timeseries",
        "title": title,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(65 + i), "datasource": DS, "expr": e, "legendFormat": legend} for i, (e, legend) in enumerate(exprs)],
    }


def quantile(q: float) -> tuple[str, str]:
    return (f"histogram_quantile({q}, sum by (le, stage) (rate(ray_shopray_stage_latency_ms_bucket[5m])))", f"p{int(q * 100)} {{{{stage}}}}")


PANELS = [
    panel(1, "Stage latency p50 / p99", [quantile(0.5), quantile(0.99)], "ms", 0, 0),
    panel(2, "Requests by status", [("sum by (status) (rate(ray_shopray_requests_total[1m]))", "{{status}}")], "reqps", 12, 0),
    panel(3, "Degraded answers by reason", [("sum by (reason) (rate(ray_shopray_degraded_total[5m]))", "{{reason}}")], "reqps", 0, 8),
    panel(4, "Candidates per stage (mean)", [("sum by (stage) (rate(ray_shopray_candidates_sum[5m])) / sum by (stage) (rate(ray_shopray_candidates_count[5m]))", "{{stage}}")], "short", 12, 8),
    panel(5, "Index version serving", [("max by (version) (ray_shopray_index_version_info)", "{{version}}")], "short", 0, 16),
    panel(6, "Serve replicas per deployment", [("sum by (deployment) (ray_serve_deployment_replica_healthy)", "{{deployment}}")], "short", 12, 16),
    panel(7, "Parser cache hit rate", [("avg by (deployment) (ray_shopray_parser_cache_hit_rate)", "{{deployment}}")], "percentunit", 0, 24),
    panel(8, "Parser outcomes (LLM, cache, fallbacks)", [("sum by (outcome) (rate(ray_shopray_parser_outcomes_total[5m]))", "{{outcome}}")], "reqps", 12, 24),
    panel(9, "Ranker batch size (requests per forward pass)", [
        ("sum(rate(ray_shopray_ranker_batch_size_sum[5m])) / sum(rate(ray_shopray_ranker_batch_size_count[5m]))", "mean"),
        ("histogram_quantile(0.95, sum by (le) (rate(ray_shopray_ranker_batch_size_bucket[5m])))", "p95"),
    ], "short", 0, 32),
]

DASHBOARD = {
    "title": "shopray",
    "uid": "shopray-search",
    "schemaVersion": 39,
    "tags": ["shopray", "ray-serve"],
    "time": {"from": "now-1h", "to": "now"},
    "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]},
    "panels": PANELS,
}

if __name__ == "__main__":
    out = Path(__file__).with_name("grafana-dashboard.json")
    out.write_text(json.dumps(DASHBOARD, indent=2) + "\n")
    print(f"wrote {out}")
