"""`shopray serve` itself, as a newcomer runs it: on a tiny catalog it indexes, trains the missing models, serves
fully modelled answers, prints where the metrics are and what is serving, and shuts down on Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from shopray.catalog.demo import generate_demo_catalog, write_jsonl

pytestmark = pytest.mark.ray
REPO = Path(__file__).resolve().parents[2]
SMALL_RECIPES = {
    "parser": {"examples": 800, "heldout": 0, "steps": 60, "batch_size": 32, "model_size": "xs"},
    "ranker": {"synthetic_queries": 200, "max_steps": 8, "batch_size": 16, "max_length": 32, "student_queries": 100},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_shopray_serve_indexes_trains_serves_and_shuts_down(tmp_path):
    catalog = tmp_path / "tiny.jsonl"
    write_jsonl(generate_demo_catalog(n=150, seed=3), catalog)
    serve_file = yaml.safe_load((REPO / "deployments" / "local.yaml").read_text())
    args = serve_file["applications"][0]["args"]
    args["bootstrap"] = {**args["bootstrap"], **SMALL_RECIPES, "threads": 1}
    config = tmp_path / "serve.yaml"
    config.write_text(yaml.safe_dump(serve_file))
    port, metrics_port = _free_port(), _free_port()
    env = {**os.environ, "SHOPRAY_HOME": str(tmp_path / "home"), "RAY_DEDUP_LOGS": "0"}
    cmd = [sys.executable, "-m", "shopray.cli", "serve", "--config", str(config), "--catalog", str(catalog),
           "--port", str(port), "--metrics-port", str(metrics_port), "--num-cpus", "4"]  # fmt: skip
    log = (tmp_path / "serve.log").open("w")
    # Ctrl-C as a terminal sends it: a shell that starts a job in the background without job control (`make test &`)
    # passes SIGINT on ignored, and a Python started so never turns it into KeyboardInterrupt.
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        serving_line = proc.stdout.readline()  # the command prints one line on stdout once the app answers
        assert serving_line.startswith(f"shopray is serving on http://127.0.0.1:{port}"), (serving_line, (tmp_path / "serve.log").read_text()[-3000:])
        url = f"http://127.0.0.1:{port}"
        deadline, answer = time.monotonic() + 420, {}
        while time.monotonic() < deadline:
            answer = httpx.post(f"{url}/search", json={"query": "red shoes under 200", "k": 5}, timeout=60).json()
            if answer["degraded"] == []:
                break
            time.sleep(2)
        assert answer["degraded"] == [], (answer, (tmp_path / "serve.log").read_text()[-3000:])
        assert answer["versions"]["parser"].startswith("llm:") and answer["versions"]["ranker"].startswith("crossencoder:")
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            # Alone, the whole test takes about 100 s; a busy 2-core machine needs more to stop the cluster.
            proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        log.close()
    assert proc.returncode == 0
    said = (tmp_path / "serve.log").read_text()
    assert f"metrics (Prometheus): http://127.0.0.1:{metrics_port}/metrics" in said
    assert "index tiny version" in said and "serving parser rule@" in said  # what answered before the models existed
    assert "parser: an LLM parser for this catalog's vocabulary is trained now" in said
