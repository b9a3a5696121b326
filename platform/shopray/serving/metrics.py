"""Metrics through ray.serve.metrics (exported by Ray's Prometheus endpoint as ray_<name>).

Created lazily inside replicas: Ray metrics need a running Ray worker.
"""

from __future__ import annotations

import functools

LATENCY_BOUNDARIES_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
COUNT_BOUNDARIES = [1, 5, 10, 20, 50, 100, 200, 500, 1000]


class IngressMetrics:
    def __init__(self):
        from ray.serve import metrics

        self.stage_latency = metrics.Histogram(
            "shopray_stage_latency_ms",
            description="Wall time of each stage as seen by the ingress, and of the whole request (stage=total).",
            boundaries=LATENCY_BOUNDARIES_MS,
            tag_keys=("stage",),
        )
        self.candidates = metrics.Histogram(
            "shopray_candidates",
            description="Candidates leaving each stage.",
            boundaries=COUNT_BOUNDARIES,
            tag_keys=("stage",),
        )
        self.degraded = metrics.Counter(
            "shopray_degraded_total", description="Requests answered with a fallback, by reason.", tag_keys=("reason",)
        )
        self.requests = metrics.Counter(
            "shopray_requests_total", description="Search requests by HTTP status.", tag_keys=("status",)
        )
        self.index_version = metrics.Gauge(
            "shopray_index_version_info", description="1 for the index version answering requests, 0 for earlier ones.", tag_keys=("version",)
        )
        self._version: str | None = None

    def saw_index_version(self, label: str | None) -> None:
        """``label``: the response's ``versions.index``, ``<version>[+<last change>]``; the gauge is per version
        only, so catalog changes do not add a time series each."""
        if not label:
            return
        version = label.split("+")[0]
        if self._version and version != self._version:
            self.index_version.set(0, tags={"version": self._version})
        # Set on every request: a gauge nobody sets again is not re-exported after a restart.
        self.index_version.set(1, tags={"version": version})
        self._version = version


@functools.lru_cache(maxsize=1)
def ingress_metrics() -> IngressMetrics:
    return IngressMetrics()
