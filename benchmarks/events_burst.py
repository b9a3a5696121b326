"""A burst of shoppers' events against a running shopray, then every acknowledged event looked up in the log.

    .venv/bin/shopray serve &                      # the demo catalog, the SQLite event log
    .venv/bin/python benchmarks/events_burst.py [--rate 2000] [--seconds 30] [--batch 50] [--connections 8]
    .venv/bin/shopray serve & SERVER=$!            # the kill drill needs the server's process id
    .venv/bin/python benchmarks/events_burst.py --kill-after 10 --server-pid $SERVER

Sends ``--rate`` events per second for ``--seconds`` in batches of ``--batch``
to ``POST /events``, open loop (a batch is sent on time whether or not earlier
ones were answered) over at most ``--connections`` connections; every event
has its own event_id, in one of ``--sessions`` sessions named after the run.
Prints the rate acknowledged (the 202s' ``accepted``), request latency p50/p99
from when each batch was due (time waiting for a connection included), and
the statuses. Then it reads the log file (``--log``) read-only: there is no
API that lists stored events. The log keeps a hash of (session, event_id) as
each event's key, not the event_id, so the run's events are counted by their
session prefix and each acknowledged one is looked up by its key.

``--kill-after S`` SIGKILLs the server ``--server-pid`` and every process
under it (Ray's GCS and raylet, the replicas, the one writing the log) S
seconds into the burst, and prints what was acknowledged before the kill
against what the log holds after it. Only that process tree is killed: other
Ray clusters on the machine are left alone. The machine stays up, so what the
OS had not yet written to disk survives: this tests that a batch is committed
before its 202, not that the commit reaches the disk (synchronous=FULL's part).

Exits 1 when an acknowledged event is missing from the log, when a batch
without an answer was stored in part, or, without --kill-after, when a request
got no answer or any status but 202 or 429.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sqlite3
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from shopray.bench.load import Timed, open_loop
from shopray.bench.report import percentiles, print_command
from shopray.catalog.demo import generate_demo_catalog
from shopray.config import EventsConfig
from shopray.events import Event

# Mostly views, as a shop's event stream is; every type is exercised.
TYPES = {"view": 80, "click": 15, "add_to_cart": 4, "purchase": 1}


@dataclass
class Sent:
    keys: list[str]  # the log's keys of the batch's events
    status: int = 0  # 0: no response (connection refused or reset, timeout)
    accepted: int = 0
    duplicates: int = 0
    error: str = ""


@dataclass
class Run:
    """One burst's events: session ``burst-<run>-<n>``, event_id ``<run>-<batch>-<position>``."""

    run: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    sessions: int = 1000
    seed: int = 0

    @property
    def session_prefix(self) -> str:
        return f"burst-{self.run}-"

    def batch(self, i: int, size: int, product_ids: list[str]) -> list[dict]:
        """Batch ``i``: the same events whenever it is asked for."""
        rng = random.Random(f"{self.seed}-{i}")
        return [{"session_id": f"{self.session_prefix}{rng.randrange(self.sessions)}", "type": rng.choices(list(TYPES), weights=list(TYPES.values()))[0],
                 "product_id": rng.choice(product_ids), "event_id": f"{self.run}-{i}-{j}"} for j in range(size)]


def keys(events: list[dict]) -> list[str]:
    """The log's key of each event, computed as the server computes it (``Event.key``)."""
    return [Event.model_construct(**e).key() for e in events]


def event_sender(client: httpx.AsyncClient, run: Run, size: int, product_ids: list[str]):
    """``send(i)`` for ``open_loop``: post batch ``i``; every outcome is a ``Sent``, never an exception."""

    async def send(i: int) -> Sent:
        events = run.batch(i, size, product_ids)
        sent = Sent(keys(events))
        try:
            resp = await client.post("/events", json={"events": events})
        except Exception as exc:  # noqa: BLE001 - a refused or cut connection is what the kill drill counts
            sent.error = f"{type(exc).__name__}: {exc}"[:200]
            return sent
        sent.status = resp.status_code
        if resp.status_code == 202:
            body = resp.json()
            sent.accepted, sent.duplicates = body["accepted"], body["duplicates"]
        return sent

    return send


def stored_keys(log: Path, session_prefix: str) -> set[str]:
    """The keys of the run's events in the SQLite log, read without writing to it (a killed writer's WAL included)."""
    db = sqlite3.connect(f"{log.expanduser().resolve().as_uri()}?mode=ro", uri=True)
    try:
        # A range on session_id rather than LIKE: the events_session index answers it. '.' sorts right after '-'.
        rows = db.execute("SELECT key FROM events WHERE session_id >= ? AND session_id < ?", (session_prefix, session_prefix[:-1] + ".")).fetchall()
    finally:
        db.close()
    return {key for (key,) in rows}


def kill_tree(pid: int, timeout_s: float = 10.0) -> list[str]:
    """SIGKILL ``pid`` and every process under it; returns what was killed. The tree is listed first: once its root
    is dead its children belong to init and can no longer be found from it."""
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    killed = []
    for proc in procs:
        try:
            name = proc.name()
            proc.kill()
            killed.append(f"{proc.pid} {name}")
        except psutil.NoSuchProcess:
            pass  # exited between the listing and the kill
    deadline = time.monotonic() + timeout_s
    while alive := [p.pid for p in procs if _running(p)]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"still running {timeout_s:g} s after SIGKILL: {alive}")
        time.sleep(0.05)
    return killed


def _running(proc: psutil.Process) -> bool:
    try:
        # A zombie holds no file and no socket any more: only its parent has yet to reap it.
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _cpu_s() -> float:
    """This process's CPU seconds: on one host with the server, the client's share is taken from the server's."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def status_counts(sent: list[Sent]) -> dict[str, int]:
    return dict(Counter(str(s.status) if s.status else s.error.split(":")[0] or "0" for s in sent))


def per_window(timed: list[Timed[Sent]], window_s: float) -> list[int]:
    """Events acknowledged in each ``window_s`` of the run, by when their 202 came back."""
    counts: Counter[int] = Counter()
    for r in timed:
        if r.value.status == 202:
            counts[int((r.t + r.latency_ms / 1000) // window_s)] += r.value.accepted
    return [counts[i] for i in range(max(counts) + 1)] if counts else []


async def burst(ns: argparse.Namespace, run: Run, product_ids: list[str]) -> tuple[list[Timed[Sent]], list[str]]:
    """The burst, and the processes killed (none without --kill-after)."""
    limits = httpx.Limits(max_connections=ns.connections, max_keepalive_connections=ns.connections)
    killed: list[str] = []

    async def kill_later() -> None:
        await asyncio.sleep(ns.kill_after)
        killed.extend(await asyncio.to_thread(kill_tree, ns.server_pid))

    async with httpx.AsyncClient(base_url=ns.url.rstrip("/"), timeout=ns.timeout_s, limits=limits) as client:
        killer = asyncio.create_task(kill_later()) if ns.kill_after is not None else None
        timed = await open_loop(event_sender(client, run, ns.batch, product_ids), ns.rate / ns.batch, ns.seconds)
        if killer is not None:
            await killer
    return timed, killed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--rate", type=float, default=2000, help="events per second offered")
    parser.add_argument("--seconds", type=float, default=30, help="how long batches are sent")
    parser.add_argument("--batch", type=int, default=50, help="events per request")
    parser.add_argument("--connections", type=int, default=8, help="most connections open at once")
    parser.add_argument("--sessions", type=int, default=1000, help="sessions the run's events are spread over")
    parser.add_argument("--timeout-s", type=float, default=60, help="per request, waiting for a connection included")
    parser.add_argument("--log", type=Path, default=EventsConfig().log_path(), help="the server's SQLite event log")
    parser.add_argument("--kill-after", type=float, default=None, help="SIGKILL the server this many seconds into the burst")
    parser.add_argument("--server-pid", type=int, default=None, help="the `shopray serve` process (needed by --kill-after)")
    parser.add_argument("--seed", type=int, default=0)
    ns = parser.parse_args(argv)
    if ns.kill_after is not None and (ns.server_pid is None or not psutil.pid_exists(ns.server_pid)):
        print("--kill-after needs --server-pid of the running `shopray serve`", file=sys.stderr)
        return 2
    command = print_command(argv)
    if ns.kill_after is not None:
        print(f"will SIGKILL {ns.server_pid} ({' '.join(psutil.Process(ns.server_pid).cmdline())[:120]}) and its processes after {ns.kill_after:g} s")

    run = Run(sessions=ns.sessions, seed=ns.seed)
    product_ids = [p.product_id for p in generate_demo_catalog()]
    start, cpu_before = time.monotonic(), _cpu_s()
    timed, killed = asyncio.run(burst(ns, run, product_ids))
    wall_s, client_cpu_s = time.monotonic() - start, _cpu_s() - cpu_before
    sent = [r.value for r in timed]
    acked = [s for s in sent if s.status == 202]
    acknowledged = sum(s.accepted for s in acked)
    last_ack_s = max((r.t + r.latency_ms / 1000 for r in timed if r.value.status == 202), default=0.0)
    latency = percentiles([r.latency_ms for r in timed if r.value.status == 202], (50, 99))
    window_s = 5.0

    stored = stored_keys(ns.log, run.session_prefix)
    missing = {k for s in acked for k in s.keys} - stored
    sending_s = ns.seconds if ns.kill_after is None else min(ns.seconds, ns.kill_after)
    figures = {
        "run": run.run,
        "offered_events_per_s": ns.rate,
        "events_sent": sum(len(s.keys) for s in sent),
        "requests": len(sent),
        "acknowledged": acknowledged,
        "duplicates": sum(s.duplicates for s in acked),
        # Over the send window (up to the kill), or until the last 202 when answers trail it: a server that keeps up scores the offered rate.
        "acknowledged_per_s": round(acknowledged / max(sending_s, last_ack_s), 1),
        "last_ack_s": round(last_ack_s, 2),
        "wall_s": round(wall_s, 2),
        "client_cpu_s": round(client_cpu_s, 2),
        "statuses": status_counts(sent),
        **latency,
        f"acknowledged_per_{window_s:g}s": per_window(timed, window_s),
        "stored": len(stored),
        "missing": len(missing),
    }
    print(f"offered {ns.rate:g} events/s for {ns.seconds:g} s in batches of {ns.batch} over {ns.connections} connections; "
          f"acknowledged {acknowledged} events ({figures['acknowledged_per_s']} events/s; the last 202 came at {last_ack_s:.1f} s), "
          f"request p50 {latency['p50_ms']} ms p99 {latency['p99_ms']} ms, statuses {figures['statuses']}; this client used {client_cpu_s:.1f} CPU s")
    print(f"events acknowledged per {window_s:g} s: {figures[f'acknowledged_per_{window_s:g}s']}")
    if ns.kill_after is not None:
        # Each batch without an answer may be stored or not, but all or nothing. Those the kill cut reached the server;
        # the others found it gone (refused, or no connection in time).
        unanswered = [set(s.keys) for s in sent if s.status == 0]
        cut = [set(s.keys) for s in sent if s.status == 0 and not s.error.startswith(("ConnectError", "ConnectTimeout", "PoolTimeout"))]
        figures |= {"killed_processes": len(killed), "unanswered_events": sum(map(len, unanswered)), "cut_events": sum(map(len, cut)),
                    "unanswered_stored": sum(len(b & stored) for b in unanswered), "batches_partly_stored": sum(0 < len(b & stored) < len(b) for b in unanswered)}
        print(f"killed {len(killed)} processes at {ns.kill_after:g} s: {', '.join(killed)}")
        print(f"acknowledged before the kill {acknowledged}, stored after it {len(stored)}; of the {figures['unanswered_events']} events never "
              f"answered ({figures['cut_events']} in requests the kill cut, the rest refused after it) {figures['unanswered_stored']} were stored, "
              f"batches stored in part: {figures['batches_partly_stored']}")
    print(f"log {ns.log}: {len(stored)} events of this run stored, {len(missing)} acknowledged events missing")
    print(json.dumps({"command": command, **figures}))
    # A 429 is the server's rate limit at work; anything else but a 202 is a failure of the server or of these batches.
    failed = [s for s in sent if s.status not in (202, 429)]
    return 1 if missing or figures.get("batches_partly_stored") or (ns.kill_after is None and failed) else 0


if __name__ == "__main__":
    sys.exit(main())
