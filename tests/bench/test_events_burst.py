"""benchmarks/events_burst.py without a server: its batches, its sender over a mock transport, its reading of the
log, and its kill of a process tree."""

import asyncio
import importlib.util
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from shopray.events import Event, EventBatch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "events_burst.py"
spec = importlib.util.spec_from_file_location("events_burst", SCRIPT)
burst = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = burst  # dataclasses look their module up there
spec.loader.exec_module(burst)

PRODUCTS = [f"D{i:06d}" for i in range(1, 30)]


def test_batches_are_valid_repeatable_and_every_event_has_its_own_id():
    run = burst.Run(sessions=7)
    batches = [run.batch(i, 50, PRODUCTS) for i in range(20)]
    EventBatch.model_validate({"events": batches[0]})  # session ids pass the pseudonymity check, types are known
    ids = [e["event_id"] for b in batches for e in b]
    assert len(ids) == len(set(ids)) == 1000
    assert run.batch(3, 50, PRODUCTS) == batches[3]
    assert {e["session_id"] for b in batches for e in b} <= {f"{run.session_prefix}{n}" for n in range(7)}
    assert {e["type"] for b in batches for e in b} == set(burst.TYPES)


def _client(handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://shop")


def test_sender_counts_accepted_events_and_turns_every_failure_into_a_sent():
    run = burst.Run()
    outcomes = iter([httpx.Response(202, json={"accepted": 4, "duplicates": 1}), httpx.Response(503, json={}), httpx.ConnectError("refused")])

    def handler(request: httpx.Request) -> httpx.Response:
        assert len(json.loads(request.content)["events"]) == 5
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def go():
        async with _client(handler) as client:
            send = burst.event_sender(client, run, 5, PRODUCTS)
            return [await send(i) for i in range(3)]

    ok, busy, down = asyncio.run(go())
    assert (ok.status, ok.accepted, ok.duplicates) == (202, 4, 1)
    assert ok.keys == [Event.model_validate(e).key() for e in run.batch(0, 5, PRODUCTS)]
    assert (busy.status, busy.accepted) == (503, 0)
    assert down.status == 0 and down.error.startswith("ConnectError")
    assert burst.status_counts([ok, busy, down]) == {"202": 1, "503": 1, "ConnectError": 1}


WRITER = """
import sqlite3, sys, time
from shopray.events import Event, SqliteEventLog
log = SqliteEventLog(sys.argv[1])
held = sqlite3.connect(sys.argv[1])
held.execute("SELECT count(*) FROM events")  # open on the WAL to the end: the log's own connections close without checkpointing it
log.append([Event.model_validate(e) for e in __import__("json").loads(sys.argv[2])], time.time())
print("appended", flush=True)
time.sleep(60)
"""


def test_stored_keys_reads_the_runs_events_from_the_wal_a_killed_writer_left(tmp_path):
    path = tmp_path / "events.sqlite"
    run, other = burst.Run(), burst.Run()
    ours = run.batch(0, 20, PRODUCTS)
    # A session that sorts right after the run's prefix ("burst-<run>0" > "burst-<run>-"): not the run's.
    neighbour = [{"session_id": f"burst-{run.run}0", "type": "view", "product_id": "D000001", "event_id": "x"}]
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), json.dumps(ours + other.batch(0, 5, PRODUCTS) + neighbour)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "appended\n"
    finally:
        writer.kill()
        writer.wait(timeout=10)
    assert Path(f"{path}-wal").stat().st_size > 0  # the events are in the WAL, not yet in the database file
    assert burst.stored_keys(path, run.session_prefix) == set(burst.keys(ours))


def _spawner(inner: str) -> str:
    """Python code that starts ``inner`` in a child process, then sleeps."""
    return f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {inner!r}]); time.sleep(60)"


def test_kill_tree_kills_the_process_and_every_descendant():
    parent = subprocess.Popen([sys.executable, "-c", _spawner(_spawner("import time; time.sleep(60)"))])
    try:
        deadline = time.monotonic() + 30
        while len(psutil.Process(parent.pid).children(recursive=True)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        tree = [psutil.Process(parent.pid), *psutil.Process(parent.pid).children(recursive=True)]
        assert len(tree) == 3
        killed = burst.kill_tree(parent.pid)
        assert sorted(int(k.split()[0]) for k in killed) == sorted(p.pid for p in tree)
        assert parent.wait(timeout=10) == -9
        assert not any(burst._running(p) for p in tree)
    finally:
        if parent.poll() is None:
            parent.kill()


def test_per_window_counts_acknowledged_events_when_their_answer_came():
    def timed(t, latency_ms, status, accepted):
        return burst.Timed(t, latency_ms, burst.Sent([], status, accepted))

    rows = [timed(0.1, 100, 202, 50), timed(4.9, 200, 202, 50), timed(6.0, 10, 503, 0), timed(11.0, 0, 202, 20)]
    assert burst.per_window(rows, 5.0) == [50, 50, 20]
    assert burst.per_window([], 5.0) == []


@pytest.mark.parametrize("argv", [["--kill-after", "1"], ["--kill-after", "1", "--server-pid", "999999999"]])
def test_the_kill_drill_refuses_to_start_without_a_live_server_pid(argv, capsys):
    assert burst.main(argv) == 2
    assert "--server-pid" in capsys.readouterr().err


SERVER = """
import sys, time
import uvicorn
from fastapi import FastAPI
from shopray.events import EventBatch, SqliteEventLog
log, lose = SqliteEventLog(sys.argv[2]), sys.argv[3] == "lose"
app = FastAPI()

@app.post("/events", status_code=202)
def events(body: EventBatch):
    if lose and body.events[0].event_id.endswith("-3-0"):  # batch 3: acknowledged, never stored
        return {"accepted": len(body.events), "duplicates": 0}
    appended = log.append(body.events, time.time())
    return {"accepted": appended.accepted, "duplicates": appended.duplicates}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@pytest.fixture
def events_server(tmp_path):
    """Start a stand-in for shopray's POST /events (same event log, no Ray): ``start(mode)`` -> (url, pid, log path)."""
    started = []

    def start(mode: str = "keep") -> tuple[str, int, Path]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        path = tmp_path / f"{mode}.sqlite"
        proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(path), mode])
        started.append(proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.post(f"http://127.0.0.1:{port}/events", json={"events": []}, timeout=1)
                return f"http://127.0.0.1:{port}", proc.pid, path
            except httpx.TransportError:
                time.sleep(0.1)
        raise TimeoutError("the stand-in server did not start")

    yield start
    for proc in started:
        proc.kill()
        proc.wait(timeout=10)


def _figures(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_burst_finds_every_acknowledged_event_in_the_log(events_server, capsys):
    url, _, path = events_server()
    assert burst.main(["--url", url, "--log", str(path), "--rate", "400", "--seconds", "2", "--batch", "20"]) == 0
    figures = _figures(capsys.readouterr().out)
    assert figures["acknowledged"] == figures["stored"] == figures["events_sent"] == 800
    assert figures["statuses"] == {"202": 40} and figures["missing"] == 0


def test_burst_fails_when_an_acknowledged_batch_is_not_in_the_log(events_server, capsys):
    url, _, path = events_server("lose")
    assert burst.main(["--url", url, "--log", str(path), "--rate", "400", "--seconds", "2", "--batch", "20"]) == 1
    figures = _figures(capsys.readouterr().out)
    assert figures["acknowledged"] == 800 and figures["stored"] == 780 and figures["missing"] == 20


def test_kill_drill_kills_the_server_mid_burst_and_counts_what_it_acknowledged(events_server, capsys):
    url, pid, path = events_server()
    assert burst.main(["--url", url, "--log", str(path), "--rate", "400", "--seconds", "3", "--batch", "20", "--kill-after", "1", "--server-pid", str(pid)]) == 0
    out = capsys.readouterr().out
    figures = _figures(out)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert 0 < figures["acknowledged"] < figures["events_sent"] == 1200
    assert figures["acknowledged"] <= figures["stored"] and figures["missing"] == figures["batches_partly_stored"] == 0
    assert figures["statuses"].get("ConnectError", 0) > 0
    assert f"acknowledged before the kill {figures['acknowledged']}, stored after it {figures['stored']}" in out
