"""The change feed's two backends (SQLite file, Redis server): the same batches read back the same, a batch is
stored whole or not at all, and two writers never interleave."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from shopray import broker
from shopray.config import FeedConfig, IndexConfig, RedisConfig
from shopray.domain import Vocabulary
from shopray.stages.retrieve.index import FeedConflict, open_feed
from shopray.stages.retrieve.index.feed_redis import RedisFeed
from shopray.stages.retrieve.index.feed_sqlite import SqliteFeed

BACKENDS = ["sqlite", "redis"]


def _feed(backend: str, request, tmp_path, name: str = "shop"):
    if backend == "redis":
        return RedisFeed.of_index(broker.connect(RedisConfig(url=request.getfixturevalue("redis_server").url), "index.feed", binary=True), name)
    return SqliteFeed.of_index(tmp_path, name)


@pytest.fixture(params=BACKENDS)
def feed(request, tmp_path):
    return _feed(request.param, request, tmp_path)


def _rows(feed, since: int = 0) -> list[tuple]:
    """Rows as plain values, so two backends' answers compare with ==."""
    return [(r.seq, r.product_id, r.product, None if r.vector is None else r.vector.tolist(), r.encoder) for r in feed.since(since)]


def _write(feed, *rows, vocabulary: Vocabulary | None = None) -> list[int]:
    with feed.writing() as w:
        seqs = [w.append(*row) for row in rows]
        if vocabulary is not None:
            w.set_vocabulary(seqs[-1], vocabulary)
    return seqs


def test_both_backends_read_back_the_same_batches(request, tmp_path):
    vector = np.arange(4, dtype=np.float32) / 4
    answers = []
    for backend in BACKENDS:
        feed = _feed(backend, request, tmp_path / backend)
        assert (feed.last_seq(), feed.since(0), feed.vocabulary_seq(0)) == (0, [], 0)
        assert _write(feed, ("a", {"product_id": "a", "title": "A", "price": 2.0}, vector, "enc"), ("b", None, None, None)) == [1, 2]
        with feed.writing() as w:
            assert w.latest(["a", "b", "c"]).keys() == {"a", "b"} and w.latest(["a"])["a"].vector.tolist() == vector.tolist()
            assert w.append("a", {"product_id": "a", "title": "A", "price": 3.0}, None, None) == 3
            assert [r.seq for r in w.since(1)] == [2, 3]  # its own row included before the commit
            assert w.latest(["a"])["a"].product["price"] == 3.0
            w.set_vocabulary(3, Vocabulary(brands=["Acme"]))
        assert feed.last_seq() == 3 and feed.vocabulary_seq(0) == 3 and feed.vocabulary_seq(3) == 0
        assert feed.vocabulary(3).brands == ["Acme"]
        assert [r.seq for r in feed.since(1, until=2)] == [2]
        answers.append(_rows(feed))
    assert answers[0] == answers[1]
    assert answers[0] == [(1, "a", {"product_id": "a", "title": "A", "price": 2.0}, vector.tolist(), "enc"), (2, "b", None, None, None),
                          (3, "a", {"product_id": "a", "title": "A", "price": 3.0}, None, None)]


def test_a_batch_that_raises_stores_nothing(feed):
    _write(feed, ("a", {"product_id": "a", "title": "A"}, None, None))
    with pytest.raises(RuntimeError), feed.writing() as w:
        w.append("b", {"product_id": "b", "title": "B"}, None, None)
        raise RuntimeError("validation failed half-way")
    assert [r.product_id for r in feed.since(0)] == ["a"] and feed.last_seq() == 1
    assert _write(feed, ("c", {"product_id": "c", "title": "C"}, None, None)) == [2]  # the number was not used up


def test_reads_page_through_a_long_feed(feed):
    _write(feed, *((f"p{i}", {"product_id": f"p{i}", "title": "T"}, None, None) for i in range(4500)))
    rows = feed.since(10)
    assert len(rows) == 4490 and [r.seq for r in rows] == list(range(11, 4501))


def test_a_redis_writer_that_raced_another_stores_nothing(redis_server):
    """Two writers (say, the admin route on two ingress nodes) read the feed at the same change: the first commits,
    the second raises FeedConflict with nothing stored, and CatalogWriter validates it again (tests/stages/retrieve/test_live_catalog.py)."""
    feed = RedisFeed.of_index(broker.connect(RedisConfig(url=redis_server.url), "index.feed", binary=True), "race")
    with pytest.raises(FeedConflict), feed.writing() as late:
        late.append("a", {"product_id": "a", "title": "late"}, None, None)
        _write(feed, ("a", {"product_id": "a", "title": "first"}, None, None), ("b", {"product_id": "b", "title": "B"}, None, None))
    assert [(r.seq, r.product["title"]) for r in feed.since(0)] == [(1, "first"), (2, "B")]


def test_open_feed_follows_the_config(tmp_path, redis_server):
    assert isinstance(open_feed(IndexConfig(name="x", root=tmp_path)), SqliteFeed)
    feed = open_feed(IndexConfig(name="x", root=tmp_path, feed=FeedConfig(backend="redis", redis=RedisConfig(url=redis_server.url))))
    assert isinstance(feed, RedisFeed) and feed.prefix == "shopray:feed:x"


CHILD = """
import sys, time
from shopray import broker
from shopray.config import RedisConfig
from shopray.stages.retrieve.index.feed_redis import RedisFeed
feed = RedisFeed.of_index(broker.connect(RedisConfig(url=sys.argv[1]), "index.feed", binary=True), "crash")
for i in range(10**9):
    with feed.writing() as w:
        seqs = [w.append(f"p{j}", {"product_id": f"p{j}", "title": "T", "price": float(i)}, None, None) for j in range(200)]
    print(seqs[-1], flush=True)
"""


def test_every_acknowledged_redis_batch_survives_a_kill_of_writer_and_server(redis_server):
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(CHILD), redis_server.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acked = []
    while len(acked) < 10:
        line = child.stdout.readline()
        assert line, child.stderr.read()
        acked.append(int(line))
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    acked += [int(line) for line in child.stdout.read().split()]
    redis_server.kill()  # without a shutdown: what Redis acknowledged must come back from its fsynced AOF
    redis_server.start()
    feed = RedisFeed.of_index(broker.connect(RedisConfig(url=redis_server.url), "index.feed", binary=True), "crash")
    last = feed.last_seq()
    assert acked == [200 * (i + 1) for i in range(len(acked))]
    assert last in (acked[-1], acked[-1] + 200)  # the batch in flight at the kill: all of it or none
    rows = feed.since(0)
    assert [r.seq for r in rows] == list(range(1, last + 1))
    assert all(r.product["price"] == (r.seq - 1) // 200 for r in rows)  # each batch whole, in order
