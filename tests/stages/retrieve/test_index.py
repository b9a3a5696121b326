"""Index build with Ray Data, hybrid queries, atomic publication and backend parity."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from shopray.config import IndexConfig
from shopray.stages.retrieve.index import FilterSpec, HybridQuery, open_store
from shopray.stages.retrieve.index.edge import EdgeStore
from shopray.stages.retrieve.ingest import build_index

pytestmark = pytest.mark.ray


def _query(store, embedder, text, filters=FilterSpec(), limit=10):
    reader = store.open()
    return reader.query(HybridQuery(dense=embedder.encode([text])[0], sparse_text=text, limit=limit, prefetch=100, filters=filters))


def test_build_publishes_a_complete_version(app_config, small_catalog):
    store = open_store(app_config.index)
    version = store.current_version()
    assert version in store.versions()
    manifest = store.manifest(version)
    assert manifest.count == len(small_catalog)
    assert manifest.dim == 384
    assert set(manifest.vocabulary.brands) == {p.brand for p in small_catalog if p.brand}


def test_hybrid_query_and_filters(app_config, embedder, small_catalog):
    store = open_store(app_config.index)
    target = small_catalog[0]
    hits = _query(store, embedder, target.title)
    assert hits[0].product_id == target.product_id  # its own title finds it first
    assert hits[0].vector.shape == (384,)
    assert abs(float(np.linalg.norm(hits[0].vector)) - 1) < 1e-3

    brand_hits = _query(store, embedder, "something", FilterSpec(brand=target.brand), limit=50)
    assert brand_hits and all(h.payload["brand"] == target.brand for h in brand_hits)
    price_hits = _query(store, embedder, "gift", FilterSpec(price_min=20, price_max=60), limit=50)
    assert price_hits and all(20 <= h.payload["price"] <= 60 for h in price_hits)


def test_failed_build_leaves_old_index_serving(app_config, embedder, small_catalog, monkeypatch, tmp_path):
    store = EdgeStore(tmp_path, "atomic")
    build_index(small_catalog[:100], store, app_config.embedding)
    old = store.current_version()

    from shopray.stages.retrieve.index import edge

    calls = {"n": 0}
    original = edge.EdgeWriter._upsert

    def flaky(self, products, dense):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full (injected)")
        return original(self, products, dense)

    monkeypatch.setattr(edge.EdgeWriter, "_upsert", flaky)
    with pytest.raises(RuntimeError, match="injected"):
        build_index(small_catalog, store, app_config.embedding, write_batch=100)
    assert store.current_version() == old
    assert store.versions() == [old]
    assert sorted(p.name for p in store.versions_dir.iterdir()) == [old]  # partial version removed
    assert len(_query(store, embedder, small_catalog[0].title)) == 10


def test_killed_build_leaves_old_index_serving(app_config, embedder, small_catalog, tmp_path):
    store = EdgeStore(tmp_path, "killed")
    build_index(small_catalog[:50], store, app_config.embedding)
    old = store.current_version()
    script = textwrap.dedent(
        f"""
        import ray
        from shopray.catalog.demo import generate_demo_catalog
        from shopray.config import EmbeddingConfig
        from shopray.stages.retrieve.index.edge import EdgeStore
        from shopray.stages.retrieve.ingest import build_index
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
        build_index(generate_demo_catalog(n=6000, seed=3), EdgeStore({str(tmp_path)!r}, "killed"),
                    EmbeddingConfig(device="cpu"), write_batch=200)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            partial = [p for p in store.versions_dir.iterdir() if p.name != old]
            if partial and (partial[0] / "shard").exists():
                time.sleep(1.0)  # let it write some points
                break
            assert proc.poll() is None, "build finished before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("the build never started writing")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert store.current_version() == old
    assert store.versions() == [old]
    assert not (partial[0] / "manifest.json").exists()
    assert _query(store, embedder, small_catalog[0].title)[0].product_id == small_catalog[0].product_id


def test_readers_survive_a_rebuild_and_followers_switch(app_config, embedder, small_catalog, tmp_path):
    import time

    from shopray.stages.retrieve.stage import follow_index

    store = EdgeStore(tmp_path, "switch")
    build_index(small_catalog[:60], store, app_config.embedding)
    follower = follow_index(store, hnsw_ef=64, every_s=0.05)
    old_reader = follower.current
    build_index(small_catalog[:80], store, app_config.embedding)
    vec = embedder.encode(["shoes"])[0]
    assert len(old_reader.query(HybridQuery(dense=vec, sparse_text="shoes", limit=100, prefetch=100))) == 60
    deadline = time.monotonic() + 10  # the new version is opened off the request path, then swapped in
    while follower.current.version == old_reader.version and time.monotonic() < deadline:
        time.sleep(0.05)
    assert follower.current.version == store.current_version() != old_reader.version
    assert follower.current.manifest.count == 80


def test_prune_keeps_current(app_config, small_catalog, tmp_path):
    store = EdgeStore(tmp_path, "prune")
    for n in (20, 30, 40):
        build_index(small_catalog[:n], store, app_config.embedding, keep_versions=2)
    assert len(store.versions()) == 2
    assert store.manifest(store.current_version()).count == 40


def test_backend_parity_edge_vs_qdrant_client(app_config, embedder, small_catalog, tmp_path):
    """The qdrant-client path (local mode) returns the same top results as the embedded engine."""
    from qdrant_client import QdrantClient

    from shopray.stages.retrieve.index.feed_sqlite import SqliteFeed
    from shopray.stages.retrieve.index.remote import RemoteStore

    remote = RemoteStore(QdrantClient(location=":memory:"), "parity", SqliteFeed(tmp_path / "feed.sqlite"))
    build_index(small_catalog, remote, app_config.embedding)
    edge = open_store(app_config.index)
    assert remote.manifest(remote.current_version()).vocabulary == edge.manifest(edge.current_version()).vocabulary

    def ranked(store, text, filters, weights):
        reader = store.open()
        q = HybridQuery(dense=embedder.encode([text])[0], sparse_text=text, limit=10, prefetch=100, filters=filters, weights=weights)
        return [(h.product_id, round(h.score, 6)) for h in reader.query(q)]

    queries = [p.title for p in small_catalog[:5]] + ["red running shoes", "wireless headphones", "cordless drill"]
    for text in queries:
        for filters in (FilterSpec(), FilterSpec(price_max=100), FilterSpec(brand=small_catalog[0].brand)):
            # Dense scores are continuous: both engines must agree exactly.
            assert ranked(edge, text, filters, (1.0, 0.0)) == ranked(remote, text, filters, (1.0, 0.0)), (text, filters)
            # BM25 ties (duplicate titles) are broken differently by the two engines, which shifts
            # RRF ranks, sometimes the first one: compare the sets of top results.
            a, b = ranked(edge, text, filters, (1.0, 1.0)), ranked(remote, text, filters, (1.0, 1.0))
            assert len(a) == len(b) and len({p for p, _ in a} & {p for p, _ in b}) >= 0.8 * len(a), (text, filters, a, b)

    # Recommendations (Qdrant's recommend query): same products, same scores, the examples and exclusions left out.
    ids = [p.product_id for p in small_catalog]
    for positive, negative, filters in (([ids[0]], [], FilterSpec()), (ids[1:3], [ids[3]], FilterSpec(price_max=100, exclude=(ids[4],))),
                                        (["unknown", ids[5]], ["unknown-too"], FilterSpec(brand=small_catalog[5].brand))):
        got = [[(h.product_id, round(h.score, 5)) for h in store.open().recommend(positive, negative, 10, filters)] for store in (edge, remote)]
        assert got[0] == got[1] and len(got[0]) > 0, (positive, negative, filters)
        assert not {p for p, _ in got[0]} & {*positive, *negative, *filters.exclude}
    assert edge.open().recommend(["unknown"], [], 10, FilterSpec()) == []


def test_open_store_picks_backend_from_config(tmp_path):
    assert isinstance(open_store(IndexConfig(name="x", root=tmp_path, qdrant_url=None)), EdgeStore)
