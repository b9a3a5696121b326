"""`shopray tune`: Ray Tune sweeps written as YAML in tuning/.

    shopray tune tuning/ranker-finetune.yaml             # start a run (local Ray unless --address/$RAY_ADDRESS)
    shopray tune tuning/ranker-finetune.yaml --resume    # continue the latest run from its checkpoints
    shopray tune --describe ranker                       # the trial settings a sweep file may fix or search

Runs live under <storage>/<sweep name>/run-<UTC time>/ (default storage
$SHOPRAY_HOME/tune): Tune's trial folders and checkpoints, the sweep file as it
started, results.csv, results.md, metric.png and summary.json; the winning
ranker or parser is registered with the alias `candidate`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from pydantic import ValidationError

from shopray.tuning.dotted import assignments


def _describe(name: str) -> str:
    from shopray.tuning.trials import trial_kind

    kind = trial_kind(name)
    lines = [f"{name} trials report {sorted(kind.metrics)} (primary: {kind.metric}); settings:"]
    for field, info in kind.settings_model.model_fields.items():
        lines.append(f"  {field} (default {info.default!r}): {info.description}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="shopray tune", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", nargs="?", help="sweep file, e.g. tuning/ranker-finetune.yaml")
    p.add_argument("--config", dest="spec_opt", default=None, help="the sweep file, as an option (what the generated RayJobs pass)")
    p.add_argument("--resume", action="store_true", help="continue the latest run (or --run) from its checkpoints (Tuner.restore)")
    p.add_argument("--run", default=None, help="run folder name to start or resume (default: a new run-<time>; with --resume: the latest)")
    p.add_argument("--address", default=None, help="Ray cluster to join (default $RAY_ADDRESS; unset: start a local one)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local cluster (default: all cores)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a sweep-file setting by dotted path (YAML value), e.g. --set num_samples=4")
    p.add_argument("--describe", choices=["ranker", "parser", "pipeline"], help="print a trainable's settings and exit")
    p.add_argument("--check", action="store_true", help="validate the sweep file and exit")
    ns = p.parse_args(argv)
    if ns.describe:
        print(_describe(ns.describe))
        return 0
    path = ns.spec or ns.spec_opt
    if not path:
        p.error("a sweep file is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from shopray.tuning.spec import load_spec

    try:
        spec = load_spec(path, assignments(ns.set))
    except (ValidationError, ValueError, OSError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 2
    if ns.check:
        print(json.dumps({"sweep": spec.name, "trainable": spec.trainable, "metric": spec.metric, "valid": True}))
        return 0
    from shopray.tuning.runner import run_sweep

    run = run_sweep(spec, resume=ns.resume, run=ns.run, address=ns.address, num_cpus=ns.num_cpus)
    summary = json.loads(open(run.outputs["summary"]).read()) if run.outputs.get("summary") else {}
    print(json.dumps({
        "run": str(run.path), "resumed": run.resumed, "interrupted": run.interrupted, "wall_s": round(run.wall_s, 1),
        "trials": summary.get("trials"), "stopped_early": summary.get("stopped_early"), "errored": summary.get("errored"),
        "best": summary.get("best"), "registered": run.registered, "outputs": run.outputs,
    }, indent=2, default=str))
    if run.interrupted:
        print(f"interrupted: resume with `shopray tune {path} --resume --run {run.path.name}`", file=sys.stderr)
        return 130
    return 0
