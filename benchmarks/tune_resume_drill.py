"""Kill a ranker sweep (SIGKILL to its whole process group) once one trial has finished, then resume it.

    .venv/bin/python benchmarks/tune_resume_drill.py

Runs `shopray tune tuning/ranker-finetune.yaml` as a small 4-trial FIFO sweep
in its own session, waits until one trial has reported three times, kills the
session's process group, lists what was left running, resumes with --resume,
and prints each trial's reports and result.json checksum before and after, so
a re-run trial shows, then the run's sessions.jsonl.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shopray.bench.report import print_command

REPO = Path(__file__).resolve().parents[1]
NAME = "ranker-resume-drill"
SETS = [f"name={NAME}", "num_samples=4", "fixed.max_steps=90", "scheduler.type=fifo", "winner.alias=none"]


def tune(spec: Path, *extra: str) -> list[str]:
    sets = [arg for s in SETS for arg in ("--set", s)]
    return ["nice", "-n", "10", sys.executable, "-m", "shopray.cli", "tune", str(spec), *sets, *extra]


def reports(trial: Path) -> list[dict]:
    result = trial / "result.json"
    return [json.loads(line) for line in result.read_text().splitlines() if line.strip()] if result.exists() else []


def checksum(trial: Path) -> str:
    result = trial / "result.json"
    return hashlib.md5(result.read_bytes()).hexdigest()[:8] if result.exists() else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", type=Path, default=REPO / "tuning" / "ranker-finetune.yaml")
    ns = ap.parse_args(argv)
    print_command(argv)

    from shopray.config import default_home

    root = default_home() / "tune" / NAME
    shutil.rmtree(root, ignore_errors=True)
    logs = Path(tempfile.mkdtemp(prefix="tune-drill-"))
    t0 = time.monotonic()
    with (logs / "kr1.out").open("w") as out, (logs / "kr1.err").open("w") as err:
        first = subprocess.Popen(tune(ns.spec), stdout=out, stderr=err, cwd=REPO, start_new_session=True)
    print(f"started pid {first.pid}; logs in {logs}", flush=True)
    while True:
        time.sleep(5)
        runs = sorted(root.glob("run-*"))
        if not runs:
            continue
        run = runs[-1]
        finished = sum(len(reports(t)) >= 3 for t in run.glob("ranker_trial_*"))
        if finished >= 1:
            time.sleep(12)  # let Tune write the experiment state after the completion
            break
    print(f"killing process group {first.pid} at {time.monotonic() - t0:.0f} s; finished trials: {finished}")
    for trial in sorted(run.glob("ranker_trial_*")):
        print(f"BEFORE {trial.name[:25]} reports={len(reports(trial))} md5={checksum(trial)}")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    time.sleep(3)
    left = subprocess.run(["ps", "-eo", "pid,pgid,cmd"], capture_output=True, text=True).stdout.splitlines()
    print("left over processes of that group:")
    for line in left[1:]:
        if line.split(None, 2)[1] == str(first.pid):
            print(line[:120])
    t1 = time.monotonic()
    with (logs / "kr2.out").open("w") as out, (logs / "kr2.err").open("w") as err:
        rc = subprocess.run(tune(ns.spec, "--resume"), stdout=out, stderr=err, cwd=REPO).returncode
    print(f"resume rc {rc} took {time.monotonic() - t1:.0f} s")
    for trial in sorted(run.glob("ranker_trial_*")):
        rows = reports(trial)
        print(f"AFTER {trial.name[:25]} reports={len(rows)} md5={checksum(trial)} iters={[r['training_iteration'] for r in rows]}")
    sessions = run / "sessions.jsonl"
    print(sessions.read_text() if sessions.exists() else f"no {sessions}", end="")
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
