"""Live catalog changes on both backends: prices, stock, deletes, new text, all-or-nothing batches, a crash mid-batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from shopray import broker
from shopray.config import RedisConfig, RetrieverConfig
from shopray.domain import Intent, Vocabulary
from shopray.stages.retrieve.changes import CatalogWriter, ChangeRejected, parse_lines
from shopray.stages.retrieve.index import HybridQuery, IndexManifest
from shopray.stages.retrieve.index.edge import EdgeStore
from shopray.stages.retrieve.index.feed_redis import RedisFeed
from shopray.stages.retrieve.index.feed_sqlite import SqliteFeed
from shopray.stages.retrieve.ingest import build_index
from shopray.stages.retrieve.stage import Retriever, follow_index

pytestmark = pytest.mark.ray
N = 40


@pytest.fixture(scope="module")
def vectors(embedder, small_catalog):
    return embedder.encode([p.search_text() for p in small_catalog[:N]])


def _publish(store, products, vectors) -> None:
    """What ``build_index`` publishes, embedded in this process (Ray Data's start-up would dominate every test)."""
    writer = store.writer(dim=vectors.shape[1])
    writer.add(products, vectors)
    writer.publish(IndexManifest(name=store.name, version=writer.version, created_at="-", count=len(products), dim=vectors.shape[1],
                                 embedding_model="test-encoder", catalog_sha256="-", vocabulary=Vocabulary.from_products(products)))


def _redis_feed(server, name: str) -> RedisFeed:
    return RedisFeed.of_index(broker.connect(RedisConfig(url=server.url), "index.feed", binary=True), name)


class _Server:
    """qdrant-client's local mode as a server behaves to concurrent clients: each request on its own (local mode
    is not thread-safe), and a batch of updates one operation at a time, so a query may land between any two."""

    def __init__(self):
        import threading

        from qdrant_client import QdrantClient

        self._client, self._lock = QdrantClient(location=":memory:"), threading.Lock()

    def __getattr__(self, name):
        method = getattr(self._client, name)

        def call(*args, **kwargs):
            with self._lock:
                return method(*args, **kwargs)

        return call

    def batch_update_points(self, collection_name, update_operations, **kwargs):
        for op in update_operations:
            with self._lock:
                self._client.batch_update_points(collection_name, [op], **kwargs)


@pytest.fixture(params=["edge", "server", "server, feed on redis"])
def store(request, tmp_path, small_catalog, vectors):
    """The embedded engine; a Qdrant server (qdrant-client's local mode); and that server with the feed on Redis, as a cluster runs."""
    if request.param == "edge":
        store = EdgeStore(tmp_path, "live")
    else:
        from shopray.stages.retrieve.index.remote import RemoteStore

        if request.param == "server":
            feed = SqliteFeed(tmp_path / "feed.sqlite")
        else:
            feed = _redis_feed(request.getfixturevalue("redis_server"), "live")
        store = RemoteStore(_Server(), "live", feed)
    _publish(store, small_catalog[:N], vectors)
    return store


def _writer(store, embedder) -> CatalogWriter:
    return CatalogWriter(store, lambda recorded: embedder)


def _apply(store, embedder, *changes: dict):
    return _writer(store, embedder).apply(parse_lines(json.dumps(c) for c in changes))


def _retriever(store, embedder, **config) -> Retriever:
    cfg = RetrieverConfig(candidates=N, prefetch=N, min_filtered=0, feed_check_s=0.05, **config)
    return Retriever(follow_index(store, hnsw_ef=64), embedder, cfg, feed=store.feed)


def _search(retriever: Retriever, text: str, **kw):
    return retriever.retrieve(text, Intent(keywords=text, source="none"), k=N, **kw)


def _eventually(retriever: Retriever, text: str, done, timeout_s: float = 5.0, **kw):
    """Search until ``done(candidates)``: the change is applied by the reader in the background."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = _search(retriever, text, **kw)
        if done(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_a_price_change_shows_in_results(store, embedder, small_catalog):
    target = small_catalog[0]
    retriever = _retriever(store, embedder)
    applied = _apply(store, embedder, {"product_id": target.product_id, "price": 1.25})
    assert (applied.upserted, applied.deleted) == (1, 0) and applied.first_seq == applied.last_seq >= 1

    def priced(found):
        return found.payloads[found.ids.index(target.product_id)]["price"] == 1.25

    found = _eventually(retriever, target.title, priced)
    assert priced(found)
    assert found.notes["index_version"] == f"{store.current_version()}+{applied.last_seq}"
    assert found.payloads[found.ids.index(target.product_id)]["title"] == target.title  # a partial change keeps the rest


def test_a_sold_out_product_is_hidden_sunk_or_shown(store, embedder, small_catalog):
    target = small_catalog[1]
    retriever = _retriever(store, embedder)
    _apply(store, embedder, {"product_id": target.product_id, "in_stock": False, "quantity": 0})
    found = _eventually(retriever, target.title, lambda f: target.product_id not in f.ids)
    assert target.product_id not in found.ids  # hidden by default
    sunk = _search(retriever, target.title, out_of_stock="sink")
    assert sunk.ids[-1] == target.product_id and sunk.groups()[-1] > sunk.groups()[0]
    shown = _search(retriever, target.title, out_of_stock="show")
    assert shown.ids[0] == target.product_id and shown.payloads[0]["quantity"] == 0


def test_a_deleted_product_never_returns_even_after_a_rebuild(store, embedder, small_catalog, app_config):
    target = small_catalog[2]
    retriever = _retriever(store, embedder)
    applied = _apply(store, embedder, {"product_id": target.product_id, "delete": True})
    assert applied.deleted == 1
    found = _eventually(retriever, target.title, lambda f: target.product_id not in f.ids)
    assert target.product_id not in found.ids and not retriever.index.current.retrieve([target.product_id])
    # The next full rebuild starts from the catalog plus the feed.
    manifest = build_index(small_catalog[:N], store, app_config.embedding)
    assert manifest.count == N - 1 and manifest.feed_seq == applied.last_seq
    fresh = _retriever(store, embedder)
    assert target.product_id not in _search(fresh, target.title).ids
    assert fresh.index.current.label == f"{manifest.version}+{applied.last_seq}"  # built with the change: nothing to replay
    assert fresh.index.current.catch_up(store.feed) == 0


def test_new_and_retitled_products_are_embedded_once_and_found(store, embedder, small_catalog):
    retriever = _retriever(store, embedder)
    renamed = small_catalog[3]
    _apply(store, embedder,
           {"product_id": "NEW-1", "title": "Zorblax titanium garden gnome", "price": 19.0},
           {"product_id": renamed.product_id, "title": "Quixotic walnut chess board"})
    rows = store.feed.since(0)
    assert [r.vector is not None for r in rows] == [True, True]
    found = _eventually(retriever, "zorblax garden gnome", lambda f: f.ids[:1] == ["NEW-1"])
    assert found.ids[0] == "NEW-1"
    assert _search(retriever, "walnut chess board").ids[0] == renamed.product_id
    _apply(store, embedder, {"product_id": "NEW-1", "price": 17.5})
    assert store.feed.since(rows[-1].seq)[0].vector is None  # a price change costs no embedding


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ({"product_id": "p", "colour": "red"}, "unknown field"),
        ({"price": 3.0}, "product_id is missing"),
        ({"product_id": "p", "price": -1}, "absurd price"),
        ({"product_id": "never-seen", "price": 3.0}, "a new one needs a title"),
        ({"product_id": "p", "delete": True, "price": 3.0}, "only the product_id"),
        ({"product_id": "p"}, "sets no field"),
    ],
)
def test_bad_changes_are_rejected_naming_the_line_and_nothing_applies(store, embedder, small_catalog, line, why):
    good = {"product_id": small_catalog[0].product_id, "price": 2.0}
    before = store.feed.last_seq()
    with pytest.raises(ChangeRejected, match=why) as exc:
        _apply(store, embedder, good, good, line)
    assert exc.value.line == 3
    assert store.feed.last_seq() == before


def test_the_cli_applies_a_file_and_rejects_a_bad_line(tmp_path, small_catalog, vectors, capsys, app_config):
    from shopray.cli import main

    store = EdgeStore(tmp_path / "index", "cli")
    _publish(store, small_catalog[:N], vectors)
    config = tmp_path / "serve.yaml"
    args = {"catalog": "demo", "index": {"name": "cli", "root": str(store.base.parent)}, "embedding": app_config.embedding.model_dump(mode="json")}
    config.write_text(json.dumps({"applications": [{"name": "shopray", "import_path": "shopray.serving.app:build_app", "args": args}]}))
    changes = tmp_path / "changes.jsonl"
    changes.write_text(json.dumps({"product_id": small_catalog[0].product_id, "price": 4.5}) + "\n\n" + json.dumps({"product_id": "x", "price": "cheap"}) + "\n")
    assert main(["catalog", "apply", str(changes), "--config", str(config)]) == 2
    assert "line 3" in capsys.readouterr().err and store.feed.last_seq() == 0
    changes.write_text(json.dumps({"product_id": small_catalog[0].product_id, "price": 4.5}) + "\n")
    assert main(["catalog", "apply", str(changes), "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out)["last_seq"] == store.feed.last_seq() == 1


def test_a_kill_mid_batch_loses_no_acknowledged_change_and_applies_no_half_batch(embedder, small_catalog, vectors, tmp_path):
    store = EdgeStore(tmp_path, "crash")
    _publish(store, small_catalog[:N], vectors)
    ids = [p.product_id for p in small_catalog[:N]]
    script = textwrap.dedent(
        f"""
        import json, sys, time
        from shopray.stages.retrieve.changes import CatalogWriter, parse_lines
        from shopray.stages.retrieve.index import feed_sqlite
        from shopray.stages.retrieve.index.edge import EdgeStore

        writer = CatalogWriter(EdgeStore({str(tmp_path)!r}, "crash"), None)
        ids = {ids!r}
        applied = writer.apply(parse_lines(json.dumps({{"product_id": p, "price": 7.0}}) for p in ids[:10]))
        print("acked", applied.last_seq, flush=True)
        append, n = feed_sqlite.SqliteFeedWriter.append, [0]
        def slow_append(self, *args):
            n[0] += 1
            if n[0] == 5:
                print("half", flush=True)
                time.sleep(60)
            return append(self, *args)
        feed_sqlite.SqliteFeedWriter.append = slow_append
        writer.apply(parse_lines(json.dumps({{"product_id": p, "price": 9.0}}) for p in ids))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    acked = proc.stdout.readline().split()
    assert acked[0] == "acked", acked
    assert proc.stdout.readline().strip() == "half"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    rows = store.feed.since(0)
    assert [r.seq for r in rows] == list(range(1, 11)) and rows[-1].seq == int(acked[1])
    retriever = _retriever(store, embedder)
    assert retriever.index.current.catch_up(store.feed) == 10
    prices = {h.product_id: h.payload["price"] for h in retriever.index.current.retrieve(ids)}
    assert all(prices[p] == 7.0 for p in ids[:10]) and all(prices[p] != 9.0 for p in ids[10:])


def test_queries_never_see_half_a_batch(store, embedder, small_catalog):
    import threading

    retriever = _retriever(store, embedder)
    reader = retriever.index.current
    ids = [p.product_id for p in small_catalog[:N]]
    seen: list[set] = []
    stop = threading.Event()

    def query() -> None:
        while not stop.is_set():
            hits = reader.retrieve(ids)
            seen.append({h.payload["price"] == 5.5 for h in hits})

    thread = threading.Thread(target=query)
    thread.start()
    try:
        for price in (5.5, 6.5, 5.5, 6.5):
            _apply(store, embedder, *({"product_id": p, "price": price} for p in ids))
            reader.catch_up(store.feed)
    finally:
        stop.set()
        thread.join()
    assert len(seen) > 4 and all(len(s) == 1 for s in seen)  # every product at the new price, or none


def test_a_withdrawn_brand_leaves_the_parsers_terms_and_cache_key(store, embedder, small_catalog):
    from collections import Counter

    from shopray.stages.parse.stage import index_terms

    terms = index_terms(store, every_s=0.05)
    before = terms.current
    brand = min((b for b in Counter(p.brand for p in small_catalog[:N] if p.brand).items()), key=lambda kv: kv[1])[0]
    assert brand in before.vocabulary.brands and before.rules.parse(f"{brand} gift").brand == brand
    _apply(store, embedder, {"product_id": small_catalog[0].product_id, "price": 3.0})  # a price change keeps the terms
    assert store.feed.vocabulary_seq(after=0) == 0
    applied = _apply(store, embedder, *({"product_id": p.product_id, "delete": True} for p in small_catalog[:N] if p.brand == brand))
    assert store.feed.vocabulary_seq(after=0) == applied.last_seq
    deadline = time.monotonic() + 5
    while terms.current.version == before.version and time.monotonic() < deadline:
        time.sleep(0.02)
    after = terms.current
    # The intent cache is keyed by the terms' version: nothing parsed before the change is served after it.
    assert after.version == f"{before.version}+{applied.last_seq}"
    assert brand not in after.vocabulary.brands and after.rules.parse(f"{brand} gift").brand is None
    assert set(after.vocabulary.brands) == {p.brand for p in small_catalog[:N] if p.brand and p.brand != brand}


def test_a_copy_that_missed_a_delta_gets_it_before_the_next(tmp_path, embedder, small_catalog, vectors, monkeypatch):
    """The embedded engine writes each delta to both of its copies; a failed second write is not lost."""
    store = EdgeStore(tmp_path, "live")
    _publish(store, small_catalog[:N], vectors)
    reader = store.open()
    ids = [p.product_id for p in small_catalog[:N]]
    _apply(store, embedder, *({"product_id": p, "price": 2.0} for p in ids))
    reader.catch_up(store.feed)
    write, calls = reader._write, []

    def fails_second(shard, delta):
        calls.append(shard)
        if len(calls) == 2:
            raise OSError("disk full")
        write(shard, delta)

    monkeypatch.setattr(reader, "_write", fails_second)
    _apply(store, embedder, {"product_id": ids[0], "price": 3.0})
    with pytest.raises(OSError):
        reader.catch_up(store.feed)  # visible in the live copy; the other copy missed it
    assert reader.retrieve([ids[0]])[0].payload["price"] == 3.0
    monkeypatch.setattr(reader, "_write", write)
    _apply(store, embedder, {"product_id": ids[1], "price": 4.0})
    reader.catch_up(store.feed)  # now queries read the copy that missed the failed write
    _apply(store, embedder, {"product_id": ids[2], "price": 5.0})
    seen = [{h.product_id: h.payload["price"] for h in reader.retrieve(ids[:4])}]
    reader.catch_up(store.feed)  # and now the other copy
    seen.append({h.product_id: h.payload["price"] for h in reader.retrieve(ids[:4])})
    assert seen == [{ids[0]: 3.0, ids[1]: 4.0, ids[2]: 2.0, ids[3]: 2.0}, {ids[0]: 3.0, ids[1]: 4.0, ids[2]: 5.0, ids[3]: 2.0}]


def test_one_check_applies_a_burst_batch_after_batch_until_caught_up(tmp_path, embedder, small_catalog, vectors, monkeypatch):
    """A batch that lands while the reader applies the one before is applied by the same check, not one check later."""
    store = EdgeStore(tmp_path, "live")
    _publish(store, small_catalog[:N], vectors)
    reader = store.open()
    ids = [p.product_id for p in small_catalog[:N]]
    catch_up, calls = reader.catch_up, []

    def arrives_meanwhile(feed, embed=None):
        calls.append(feed)
        if len(calls) == 1:  # the second batch is acknowledged while the first is being applied
            _apply(store, embedder, {"product_id": ids[1], "price": 7.0})
        return catch_up(feed, embed)

    monkeypatch.setattr(reader, "catch_up", arrives_meanwhile)
    _apply(store, embedder, {"product_id": ids[0], "price": 6.0})
    reader.follow(store.feed, every_s=3600)  # the only check for an hour
    deadline = time.monotonic() + 10
    while (reader.seq < 2 or reader._applying.locked()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert {h.product_id: h.payload["price"] for h in reader.retrieve(ids[:2])} == {ids[0]: 6.0, ids[1]: 7.0}
    assert len(calls) >= 2


def _server_store(tmp_path, small_catalog, vectors):
    from shopray.stages.retrieve.index.remote import RemoteStore

    store = RemoteStore(_Server(), "live", SqliteFeed(tmp_path / "feed.sqlite"))
    _publish(store, small_catalog[:N], vectors)
    return store


def test_a_server_replica_never_sees_half_a_batch_another_replica_applies(tmp_path, embedder, small_catalog, vectors):
    """On a Qdrant server the replicas share one collection: while one applies a batch point by point, another
    answers from the changes it has applied itself, all of a batch or none."""
    import threading

    store = _server_store(tmp_path, small_catalog, vectors)
    applier, watcher = store.open(), store.open()
    ids = [p.product_id for p in small_catalog[:N]]
    original = {h.product_id: h.payload["price"] for h in watcher.retrieve(ids)}
    seen: list[dict] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append({h.product_id: h.payload["price"] for h in watcher.retrieve(ids)})

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        for price in (5.5, 6.5, 7.5):
            _apply(store, embedder, *({"product_id": p, "price": price} for p in ids))
            applier.catch_up(store.feed)
    finally:
        stop.set()
        thread.join()
    assert len(seen) > 3 and all(s == original for s in seen)  # the watcher applied nothing: it saw nothing
    assert {h.payload["price"] for h in applier.retrieve(ids)} == {7.5}
    assert watcher.catch_up(store.feed) == 3 * N  # the same rows, written again with the same values
    hits = watcher.query(HybridQuery(dense=vectors[0], sparse_text=small_catalog[0].title, limit=N, prefetch=N))
    assert len({h.product_id for h in hits}) == len(hits) == N and {h.payload["price"] for h in hits} == {7.5}


def test_a_server_replica_replaying_late_reopens_nothing_a_later_batch_closed(tmp_path, embedder, small_catalog, vectors):
    store = _server_store(tmp_path, small_catalog, vectors)
    fast, slow = store.open(), store.open()
    target = small_catalog[0]
    first = _apply(store, embedder, {"product_id": target.product_id, "price": 1.0})
    _apply(store, embedder, {"product_id": target.product_id, "price": 2.0, "title": f"{target.title} v2"})
    fast.catch_up(store.feed)

    class FirstBatchOnly:  # the slow replica read the feed before the second batch was committed
        def since(self, seq, until=None):
            return store.feed.since(seq, first.last_seq)

    slow.catch_up(FirstBatchOnly())
    assert slow.retrieve([target.product_id])[0].payload["price"] == 1.0
    for reader in (fast, slow):
        reader.catch_up(store.feed)
        found = reader.query(HybridQuery(dense=vectors[0], sparse_text=target.title, limit=N, prefetch=N))
        mine = [h for h in found if h.product_id == target.product_id]
        assert [h.payload["price"] for h in mine] == [2.0] and mine[0].payload["title"].endswith("v2")
        assert len({h.product_id for h in found}) == len(found)


def test_a_batch_that_raced_another_writer_on_a_redis_feed_is_validated_again(redis_server, embedder, small_catalog, vectors):
    """Two ingress nodes take changes for one product at once: the batch committed second is checked against the
    first's result, so the retitle keeps the new price instead of writing back the old one."""
    from qdrant_client import QdrantClient

    from shopray.stages.retrieve.index.remote import RemoteStore

    feed = _redis_feed(redis_server, "race")
    store = RemoteStore(QdrantClient(location=":memory:"), "race", feed)
    _publish(store, small_catalog[:N], vectors)
    target, other, calls = small_catalog[0], _writer(store, embedder), []

    def embedding_for(recorded):
        calls.append(recorded)
        if len(calls) == 1:  # the other node's batch lands while this one is being embedded
            other.apply(parse_lines([json.dumps({"product_id": target.product_id, "price": 3.0})]))
        return embedder

    applied = CatalogWriter(store, embedding_for).apply(parse_lines([json.dumps({"product_id": target.product_id, "title": "Retitled"})]))
    assert applied.last_seq == 2 and len(calls) == 2
    assert [(r.seq, r.product["title"], r.product["price"]) for r in feed.since(0)] == [(1, target.title, 3.0), (2, "Retitled", 3.0)]


def test_a_feed_that_ends_before_the_index_was_built_takes_no_change(tmp_path, embedder, small_catalog, vectors, redis_server, app_config):
    """An index built with the SQLite feed's changes, then configured with a new, empty Redis feed: a change appended
    there would be numbered below what the index holds and never show, so it is refused, saying how to fix it."""
    from shopray.stages.retrieve.changes import FeedMismatch

    store = EdgeStore(tmp_path, "moved")
    _publish(store, small_catalog[:N], vectors)
    _apply(store, embedder, {"product_id": small_catalog[0].product_id, "price": 1.0})
    build_index(small_catalog[:N], store, app_config.embedding)
    moved = EdgeStore(tmp_path, "moved", _redis_feed(redis_server, "moved"))
    with pytest.raises(FeedMismatch, match="was built with change 1 of its feed, but the configured feed ends at change 0"):
        _apply(moved, embedder, {"product_id": small_catalog[1].product_id, "price": 2.0})
    assert moved.feed.last_seq() == 0
