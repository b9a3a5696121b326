"""The event log's contract, the same for both backends: order, cursors, dedup, all-or-nothing, deletion, durability."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from pydantic import ValidationError

from shopray import broker
from shopray.config import EventsConfig, RedisConfig
from shopray.events import Event, EventBatch, EventLog, RedisEventLog, SqliteEventLog, StoredEvent, open_event_log

from .conftest import BACKENDS, REDIS_PASSWORD

DAY = 86400.0


def ev(session: str = "s1", product: str = "p1", type: str = "view", **fields) -> Event:
    return Event(session_id=session, type=type, product_id=product, **fields)


def _client(url: str) -> redis.Redis:
    return broker.connect(RedisConfig(url=url), "events")


def everything(log: EventLog) -> list[StoredEvent]:
    out, cursor = [], None
    while True:
        events, cursor = log.since(cursor, limit=1000)
        if not events:
            return out
        out += events


def test_since_returns_events_in_append_order_and_a_cursor_to_read_on(event_log):
    now = time.time()
    first = event_log.append([ev(product="a", ts=now - 50, query="red shoes"), ev(product="b"), ev("s2", "c", "click", event_id="x")], now)
    second = event_log.append([ev(product="d", type="purchase", event_id="y"), ev("s3", "e", "add_to_cart", event_id="z")], now + 1)
    assert (first.accepted, first.duplicates, second.accepted) == (3, 0, 2)

    events, cursor = event_log.since(None)
    assert [e.product_id for e in events] == ["a", "b", "c", "d", "e"]
    assert (events[0].ts, events[0].query, events[1].ts, events[1].query, events[3].ts) == (now - 50, "red shoes", now, None, now + 1)
    assert (events[2].session_id, events[2].type) == ("s2", "click")
    assert event_log.since(cursor) == ([], cursor)

    paged, cursor = [], None
    while page := event_log.since(cursor, limit=2)[0]:
        paged, cursor = paged + page, page[-1].seq
    assert paged == events

    event_log.append([ev(product="f", event_id="f")], now)
    assert [e.product_id for e in event_log.since(events[2].seq)[0]] == ["d", "e", "f"]


def test_a_duplicate_is_stored_once_whether_repeated_in_its_batch_or_in_a_later_one(event_log):
    now = time.time()
    assert event_log.append([ev(event_id="1"), ev(event_id="2"), ev(event_id="1", product="other"), ev(product="q"), ev(product="q")], now).accepted == 3
    again = event_log.append([ev(event_id="2"), ev(product="q"), ev("s2", event_id="1"), ev(product="q", ts=now - 5)], now + 60)
    assert (again.accepted, again.duplicates) == (2, 2)  # an event_id names an event within its session only
    assert [(e.session_id, e.product_id) for e in everything(event_log)] == [("s1", "p1"), ("s1", "p1"), ("s1", "q"), ("s2", "p1"), ("s1", "q")]


def test_a_batch_with_an_invalid_event_stores_nothing(event_log):
    good = {"session_id": "s1", "type": "view", "product_id": "p1"}
    with pytest.raises(ValidationError):
        EventBatch.model_validate({"events": [good, good | {"session_id": "bob@example.com"}]})
    # One that slipped past validation fails the whole batch in the backend, not just its own row.
    broken = Event.model_construct(session_id="s1", type="view", product_id=None, query=None, ts=None, event_id="3")
    with pytest.raises((sqlite3.IntegrityError, redis.DataError)):
        event_log.append([ev(event_id="1"), ev(event_id="2"), broken, ev(event_id="4")], time.time())
    assert everything(event_log) == []


def test_erasing_a_session_deletes_exactly_its_events_and_changes_the_generation(event_log):
    now = time.time()
    event_log.append([ev("s1", "a", event_id="1"), ev("s2", "b"), ev("s1", "c", "purchase"), ev("s3", "a")], now)
    generation = event_log.generation()
    assert event_log.erase_session("s1") == 2
    assert [(e.session_id, e.product_id) for e in everything(event_log)] == [("s2", "b"), ("s3", "a")]
    assert event_log.generation() != generation
    generation = event_log.generation()
    assert event_log.erase_session("s1") == event_log.erase_session("nobody") == 0
    assert event_log.generation() == generation
    # Its dedup keys went with it: the same events sent again are new ones.
    assert event_log.append([ev("s1", "a", event_id="1"), ev("s1", "c", "purchase")], now).accepted == 2


def test_purge_deletes_events_older_than_the_cutoff_by_their_ts(event_log):
    now = time.time()
    event_log.append([ev(product="old", ts=now - 40 * DAY), ev(product="newer", ts=now - 20 * DAY), ev(product="late", ts=now - 45 * DAY)], now)
    event_log.append([ev(product="new")], now)
    generation = event_log.generation()
    assert event_log.purge(now - 30 * DAY) == 2
    assert [e.product_id for e in everything(event_log)] == ["newer", "new"]
    assert event_log.generation() != generation
    generation = event_log.generation()
    assert event_log.purge(now - 30 * DAY) == 0
    assert event_log.generation() == generation


def test_redis_backend_purges_across_chunks(redis_server):
    with RedisEventLog(_client(redis_server.url)) as log:
        now = time.time()
        log.append([ev(product=f"p{i}", ts=now - (40 if i % 3 else 1) * DAY, event_id=str(i)) for i in range(2500)], now)
        assert log.purge(now - 30 * DAY) == sum(1 for i in range(2500) if i % 3)
        assert len(everything(log)) == 834
        assert redis.Redis.from_url(redis_server.url).scard("shopray:events:session:s1") == 834


def test_redis_backend_warns_when_the_server_does_not_fsync_each_write(redis_server, caplog):
    with caplog.at_level(logging.WARNING, logger="shopray.broker"):
        RedisEventLog(_client(redis_server.url)).close()
        assert caplog.records == []
        redis.Redis.from_url(redis_server.url).config_set("appendfsync", "everysec")
        RedisEventLog(_client(redis_server.url)).close()
    assert "appendfsync everysec" in caplog.text


def test_open_event_log_picks_the_configured_backend(tmp_path, redis_server):
    assert isinstance(open_event_log(EventsConfig(path=tmp_path / "e.sqlite")), SqliteEventLog)
    assert EventsConfig().log_path() == open_event_log(EventsConfig()).path == Path(os.environ["SHOPRAY_HOME"]) / "events" / "events.sqlite"
    assert isinstance(open_event_log(EventsConfig(backend="redis", redis=RedisConfig(url=redis_server.url))), RedisEventLog)


def test_redis_backend_authenticates_with_the_password_from_the_configured_variable(redis_server_with_password, monkeypatch, caplog):
    config = EventsConfig(backend="redis", redis=RedisConfig(url=redis_server_with_password.url))
    monkeypatch.delenv("SHOPRAY_REDIS_PASSWORD", raising=False)
    with pytest.raises(redis.AuthenticationError, match=r"its password comes from \$SHOPRAY_REDIS_PASSWORD, which is unset or empty"):
        open_event_log(config)
    monkeypatch.setenv("SHOPRAY_REDIS_PASSWORD", "not-the-password")
    with pytest.raises(redis.AuthenticationError, match=r"\$SHOPRAY_REDIS_PASSWORD, which is set"):
        open_event_log(config)
    with pytest.raises(redis.AuthenticationError, match="events.redis.password_env is null"):
        open_event_log(config.model_copy(update={"redis": RedisConfig(url=config.redis.url, password_env=None)}))

    monkeypatch.setenv("SHOPRAY_REDIS_PASSWORD", REDIS_PASSWORD)
    with caplog.at_level(logging.WARNING, logger="shopray.broker"), open_event_log(config) as log:
        assert log.append([ev()], time.time()).accepted == 1
        assert [e.product_id for e in everything(log)] == ["p1"]
    assert caplog.records == []  # authenticated, the durability check can read the server's config
    monkeypatch.setenv("OTHER_PASSWORD", REDIS_PASSWORD)
    monkeypatch.delenv("SHOPRAY_REDIS_PASSWORD")
    with open_event_log(config.model_copy(update={"redis": RedisConfig(url=config.redis.url, password_env="OTHER_PASSWORD")})) as log:
        assert len(everything(log)) == 1


CHILD = """
import sys, time
from shopray import broker
from shopray.config import RedisConfig
from shopray.events import Event, RedisEventLog, SqliteEventLog
backend, target, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
log = RedisEventLog(broker.connect(RedisConfig(url=target), "events")) if backend == "redis" else SqliteEventLog(target)
for i in range(10**9):
    batch = [Event(session_id=f"s{j % 7}", type="view", product_id=f"p{j}", event_id=f"{i}-{j}") for j in range(size)]
    print(log.append(batch, time.time()).accepted, flush=True)
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_acknowledged_batch_survives_a_kill_and_no_batch_is_stored_in_part(backend, request, tmp_path):
    size = 200
    server = request.getfixturevalue("redis_server") if backend == "redis" else None
    target = server.url if server else str(tmp_path / "events.sqlite")
    child = subprocess.Popen([sys.executable, "-c", CHILD, backend, target, str(size)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acked, times = [], []
    while len(acked) < 15:
        line = child.stdout.readline()
        assert line, child.stderr.read()
        acked.append(int(line))
        times.append(time.monotonic())
    time.sleep((times[-1] - times[4]) / 10 / 2)  # into the middle of the next batch's append, not right after an acknowledgement
    child.send_signal(signal.SIGKILL)
    child.wait()
    acked += [int(line) for line in child.stdout.read().split()]  # acknowledged before the kill, still in the pipe
    if server:
        server.kill()  # Redis too dies without a shutdown: what it acknowledged must come back from its fsynced AOF
        server.start()
    log = RedisEventLog(_client(target)) if server else SqliteEventLog(target)
    stored = len(everything(log))
    assert acked == [size] * len(acked)
    assert stored in (len(acked) * size, (len(acked) + 1) * size)  # the batch in flight at the kill: all of it or none
