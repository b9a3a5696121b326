"""What the behaviour features (session affinity, popularity) do to NDCG@10 on the demo, with synthetic shoppers.

    .venv/bin/python benchmarks/behaviour_effect.py [--sessions 300] [--config deployments/local.yaml] [--set ranker.kind=biencoder]

Synthetic shoppers (``shopray.events.synthetic``, which states the story they
follow) write their events to a log of the run's own; each judged search runs
through the shipped graph in one process with its session's clicks. Rows: no
behaviour, each feature alone, both at the config's weights. A second world,
``--no-signal`` style, grades with another taste and appeal than the events
follow, so the features carry no information: that row says what they cost
when wrong. Each row has its paired 95% interval against "no behaviour".
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from shopray.bench.relevance import paired_ci
from shopray.bench.report import print_command
from shopray.config import AppConfig, app_config_from_serve_file
from shopray.tuning.dotted import apply_dotted, assignments
from shopray.tuning.pipeline_trial import evaluate_pipeline, prepare
from shopray.tuning.trials import JudgmentsSpec, PipelineTrialSettings


def with_weights(app: AppConfig, session: float | None, popularity: float | None) -> AppConfig:
    """``app`` with the ranker's behaviour weights replaced where given; session 0 also stops the retriever's pull."""
    ranker = app.ranker.model_copy(update={k: v for k, v in (("session_weight", session), ("popularity_weight", popularity)) if v is not None})
    retriever = app.retriever.model_copy(update={"session_weight": 0.0}) if session == 0 else app.retriever
    return app.model_copy(update={"ranker": ranker, "retriever": retriever})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", default="deployments/local.yaml", help="Serve config whose app args the graph runs with")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="override an app arg (YAML value)")
    ns = ap.parse_args(argv)
    print_command(argv)
    base = app_config_from_serve_file(ns.config).model_dump(mode="json", exclude_none=True)
    app = AppConfig.model_validate(apply_dotted(base, assignments(ns.sets)))
    cfg = app.ranker
    rows = [("no behaviour", 0.0, 0.0), ("session affinity", None, 0.0), ("popularity", 0.0, None), ("both (config weights)", None, None)]
    settings = PipelineTrialSettings(diversity_weight=0.0)
    print(json.dumps({"config": ns.config, "sets": ns.sets, "session_weight": cfg.session_weight, "popularity_weight": cfg.popularity_weight,
                      "retriever_session_weight": app.retriever.session_weight, "ranker": cfg.kind, "parser": app.parser.kind}), flush=True)
    for signal in (True, False):
        with tempfile.TemporaryDirectory(prefix="shopray-behaviour-") as tmp:
            cases, world = prepare(JudgmentsSpec(source="sessions", queries=ns.sessions, seed=ns.seed, signal=signal), app, Path(tmp))
            base_scores = None
            for name, session, popularity in rows if signal else (rows[0], rows[-1]):
                t0 = time.perf_counter()
                r = evaluate_pipeline(settings, cases, with_weights(world, session, popularity))
                scores = np.array(r["per_query"])
                base_scores = scores if base_scores is None else base_scores
                print(json.dumps({"world": "signal" if signal else "no signal", "row": name, "sessions": len(cases), "ndcg@10": round(float(scores.mean()), 4),
                                  "diff_vs_none": round(float((scores - base_scores).mean()), 4), "diff_ci95": paired_ci(scores, base_scores),
                                  "ms_per_search": round((time.perf_counter() - t0) * 1000 / len(cases), 1)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
