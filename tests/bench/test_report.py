"""The harness's printing helpers: one percentile definition, one `command:` line, one table format."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shopray.bench.cluster import WORKER_ENV, free_port, worker_env
from shopray.bench.report import command, markdown_table, percentiles, print_command

PLATFORM = Path(__file__).resolve().parents[2] / "platform"


def test_percentiles_interpolate_linearly_between_ranks():
    p = percentiles(range(1, 101), digits=None)
    assert p == pytest.approx({"p50_ms": 50.5, "p95_ms": 95.05, "p99_ms": 99.01})
    # Nearest-rank would answer 10 or 20 here.
    assert percentiles([20.0, 10.0], (50,), digits=None) == {"p50_ms": 15.0}


def test_percentiles_scale_round_name_and_mean():
    seconds = [0.001, 0.002, 0.003, 0.010]
    p = percentiles(seconds, (50, 99.9), scale=1000, digits=2, mean=True)
    assert list(p) == ["p50_ms", "p99.9_ms", "mean_ms"]
    assert p["p50_ms"] == 2.5
    assert p["p99.9_ms"] == pytest.approx(9.98, abs=0.005)
    assert p["mean_ms"] == 4.0
    assert percentiles([1.26, 1.26], (50,)) == {"p50_ms": 1.3}  # rounded to one digit by default
    assert percentiles([3.0], (50,), suffix="_ms_of_200s") == {"p50_ms_of_200s": 3.0}


def test_percentiles_of_nothing_are_null_not_nan():
    p = percentiles([], (50, 99), mean=True)
    assert p == {"p50_ms": None, "p99_ms": None, "mean_ms": None}
    assert not any(isinstance(v, float) and math.isnan(v) for v in p.values())


def test_command_names_the_script_from_the_repository_and_quotes_arguments():
    line = command(["--n", "5", "--query", "red shoes"], script="/somewhere/checkout/benchmarks/search_latency.py")
    assert line == ".venv/bin/python benchmarks/search_latency.py --n 5 --query 'red shoes'"
    assert command([], script="tools/other.py") == ".venv/bin/python tools/other.py"


def test_command_defaults_to_this_process_and_prints_one_line(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["benchmarks/ranker_batching.py", "--seconds", "3"])
    assert print_command() == ".venv/bin/python benchmarks/ranker_batching.py --seconds 3"
    assert capsys.readouterr().out == "command: .venv/bin/python benchmarks/ranker_batching.py --seconds 3\n"
    # A main(argv) called with its own arguments prints those, not the process's.
    print_command(["--seconds", "9"])
    assert capsys.readouterr().out == "command: .venv/bin/python benchmarks/ranker_batching.py --seconds 9\n"


def test_markdown_table_aligns_names_left_and_figures_right():
    table = markdown_table(["method", "N", "median ms"], [["mmr", 50, "0.116"], ["dpp", 200, "0.422"]])
    assert table.splitlines() == [
        "| method | N | median ms |",
        "|---|---:|---:|",
        "| mmr | 50 | 0.116 |",
        "| dpp | 200 | 0.422 |",
    ]
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        markdown_table(["a", "b", "c"], [["x", 1]])


def test_worker_env_keeps_workers_off_the_model_hub_and_adds_variables():
    assert worker_env() == {"env_vars": WORKER_ENV}
    assert worker_env(SHOPRAY_ADMIN_KEY="k") == {"env_vars": {"HF_HUB_OFFLINE": "1", "SHOPRAY_ADMIN_KEY": "k"}}
    assert WORKER_ENV == {"HF_HUB_OFFLINE": "1"}  # worker_env copies, never mutates the shared default
    assert 0 < free_port() < 65536


def test_importing_the_harness_changes_no_environment_variable():
    code = (
        "import os; before = dict(os.environ)\n"
        "import shopray.bench, shopray.bench.cluster, shopray.bench.load, shopray.bench.ranker, shopray.bench.report\n"
        "changed = {k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)}\n"
        "assert not changed, changed\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"} | {"PYTHONPATH": str(PLATFORM)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
