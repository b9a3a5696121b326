"""Outputs beside the run: results.csv, results.md, metric.png and summary.json."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from shopray.tuning.spec import SweepSpec


def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def trial_rows(spec: SweepSpec, results, statuses: dict[str, str]) -> tuple[list[dict], dict[str, list[tuple[int, float]]]]:
    """One row per trial, and each trial's (iteration, metric) curve."""
    better = max if spec.mode == "max" else min
    rows, curves = [], {}
    for result in results:
        metrics = result.metrics or {}
        trial_id = metrics.get("trial_id") or Path(str(result.path)).name
        frame = result.metrics_dataframe
        curve = []
        if frame is not None and spec.metric in frame:
            curve = [(int(i), float(m)) for i, m in zip(frame["training_iteration"], frame[spec.metric]) if _num(m) is not None]
        curves[trial_id] = curve
        iterations = int(metrics.get("training_iteration") or 0)
        planned = int(metrics.get("planned_reports") or 0)
        status = statuses.get(trial_id, "ERROR" if result.error else "TERMINATED")
        row = {"trial_id": trial_id, "status": status}
        row.update({k: result.config.get(k) for k in spec.search_space})
        row.update({
            f"best_{spec.metric}": round(better(m for _, m in curve), 4) if curve else None,
            f"last_{spec.metric}": round(curve[-1][1], 4) if curve else None,
            "iterations": iterations,
            "planned_iterations": planned,
            # ASHA stopped it: it finished without error before its own last report.
            "stopped_early": bool(status == "TERMINATED" and not result.error and planned and iterations < planned),
            "seconds": round(float(metrics.get("time_total_s") or 0.0), 1),
            "error": type(result.error).__name__ if result.error else "",
        })
        for extra in sorted(m for m in metrics if m in ("ndcg@10", "ild@10", "val_exact", "loss")):
            row[extra] = round(float(metrics[extra]), 4)
        rows.append(row)
    key = f"best_{spec.metric}"
    rows.sort(key=lambda r: (r[key] is None, -(r[key] or 0) if spec.mode == "max" else (r[key] or 0)))
    return rows, curves


def _markdown(rows: list[dict]) -> str:
    if not rows:
        return "(no trials)\n"
    cols = list(dict.fromkeys(c for r in rows for c in r))
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _plot(spec: SweepSpec, curves: dict[str, list[tuple[int, float]]], rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    if any(len(c) > 1 for c in curves.values()):
        for trial_id, curve in sorted(curves.items()):
            if curve:
                ax.plot([i for i, _ in curve], [m for _, m in curve], marker="o", markersize=3, label=trial_id)
        ax.set_xlabel("report (training_iteration)")
        ax.legend(fontsize=6, ncol=2)
    else:  # one report per trial (pipeline-hpo): metric against trial order
        ordered = sorted(rows, key=lambda r: r["trial_id"])
        values = [r[f"best_{spec.metric}"] for r in ordered]
        ax.plot(range(1, len(values) + 1), [v if v is not None else float("nan") for v in values], marker="o")
        ax.set_xlabel("trial")
    ax.set_ylabel(spec.metric)
    ax.set_title(f"{spec.name}: {spec.metric} per trial")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def write_outputs(spec: SweepSpec, path: Path, results, statuses: dict[str, str]) -> dict[str, str]:
    rows, curves = trial_rows(spec, results, statuses)
    outputs = {"csv": path / "results.csv", "markdown": path / "results.md", "plot": path / "metric.png", "summary": path / "summary.json"}
    cols = list(dict.fromkeys(c for r in rows for c in r))
    with outputs["csv"].open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols)
        writer.writeheader()
        writer.writerows(rows)
    outputs["markdown"].write_text(f"# {spec.name}\n\n{spec.description}\n\nmetric: {spec.metric} ({spec.mode})\n\n" + _markdown(rows))
    _plot(spec, curves, rows, outputs["plot"])
    summary = {
        "sweep": spec.name,
        "run": path.name,
        "metric": spec.metric,
        "trials": len(rows),
        "terminated": sum(r["status"] == "TERMINATED" for r in rows),
        "errored": sum(r["status"] == "ERROR" for r in rows),
        "stopped_early": sum(bool(r["stopped_early"]) for r in rows),
        "best": rows[0] if rows else None,
    }
    outputs["summary"].write_text(json.dumps(summary, indent=2, default=str))
    return {k: str(v) for k, v in outputs.items()}
