"""A pipeline-hpo winner against the defaults on Home Depot validation queries the sweep never saw.

    .venv/bin/python benchmarks/pipeline_hpo_holdout.py ~/.shopray/tune/pipeline-hpo/run-*/summary.json [--queries 200]

The sweep scores its trials on the first --seen validation queries (150 in
tuning/pipeline-hpo.yaml); this draws --queries others and evaluates the
untuned config and the summary's best trial on them, the same way trials are scored.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

from shopray.bench.report import print_command
from shopray.tuning.dotted import apply_dotted
from shopray.tuning.pipeline_trial import cases_of, evaluate_pipeline, load_judgments_for
from shopray.tuning.trials import JudgmentsSpec, PipelineTrialSettings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("summary", help="summary.json of a pipeline-hpo run")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seen", type=int, default=150, help="validation queries the sweep used")
    ap.add_argument("--diversity-weight", type=float, default=0.1)
    ns = ap.parse_args(argv)
    print_command(argv)
    with open(ns.summary) as fh:
        best = json.load(fh)["best"]
    seen = set(load_judgments_for(JudgmentsSpec(source="homedepot", split="val", queries=ns.seen, seed=0)))
    every = load_judgments_for(JudgmentsSpec(source="homedepot", split="val", queries=10**6, seed=0))
    held = {q: every[q] for q in random.Random(1).sample(sorted(q for q in every if q not in seen), ns.queries)}
    base = {"index": {"name": "homedepot"}, "parser": {"kind": "rule"}, "ranker": {"kind": "biencoder"}}
    # The trial's searched keys (app.<section>.<field>) over the defaults.
    tuned = apply_dotted({"app": base}, {k: v for k, v in best.items() if k.startswith("app.")})["app"]
    for name, app in (("defaults", base), ("best", tuned)):
        t0 = time.time()
        r = evaluate_pipeline(PipelineTrialSettings(app=app, diversity_weight=ns.diversity_weight), cases_of(held))
        print(json.dumps({"config": name, "held_out_queries": len(held), **{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items() if k != "per_query"}, "s": round(time.time() - t0, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
