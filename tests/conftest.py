"""Shared fixtures: one Ray session, one small demo catalog indexed once, a real redis-server per test that asks."""

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
# Registries, indexes and training runs that a test does not place itself go here, never into ~/.shopray.
os.environ["SHOPRAY_HOME"] = tempfile.mkdtemp(prefix="shopray-test-home-")

from shopray.config import AppConfig, EmbeddingConfig, IndexConfig, RankerConfig, RetrieverConfig  # noqa: E402
from shopray.domain import Intent  # noqa: E402

SMALL_CATALOG_SIZE = 400
REDIS_SERVER = Path("/usr/bin/redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory, metrics_port):
    import ray

    ray.init(
        num_cpus=4,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=str(tmp_path_factory.mktemp("ray")),
        _metrics_export_port=metrics_port,
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def small_catalog():
    from shopray.catalog.demo import generate_demo_catalog

    return generate_demo_catalog(n=SMALL_CATALOG_SIZE, seed=11)


@pytest.fixture(scope="session")
def scarce(small_catalog):
    """'<color> <brand> <leaf> under <price>' for the product whose exact matches are fewest (but some), with the
    most near misses: the test catalog's "nike blue running shoes under 90"."""

    def exact(p, q):
        return (q.brand, q.color, q.category) == (p.brand, p.color, p.category) and q.price is not None and q.price <= p.price

    def score(p):
        n_exact = sum(exact(p, q) for q in small_catalog)
        over_budget = sum((q.brand, q.color, q.category) == (p.brand, p.color, p.category) and q.price > p.price for q in small_catalog)
        other_colors = sum((q.brand, q.category) == (p.brand, p.category) and q.color != p.color for q in small_catalog)
        return (n_exact <= 3, over_budget > 0, other_colors)

    p = max((p for p in small_catalog if p.brand and p.color and p.category and p.price), key=score)
    intent = Intent(keywords=p.category.split(" > ")[-1], brand=p.brand, color=p.color, category=p.category, price_max=p.price)
    return intent, [q.product_id for q in small_catalog if exact(p, q)]


@pytest.fixture(scope="session")
def embedding_config():
    return EmbeddingConfig(device="cpu")


@pytest.fixture(scope="session")
def embedder(embedding_config):
    from shopray.embedding import shared_embedder

    return shared_embedder(embedding_config)


@pytest.fixture(scope="session")
def app_config(tmp_path_factory, ray_session, small_catalog, embedding_config) -> AppConfig:
    """An AppConfig whose index holds the small catalog.

    Popularity is off: every test's events land in one log (the locust test sends hundreds), and an order that
    depends on which tests ran first is a flaky order. Tests of popularity turn it on in an app of their own."""
    from shopray.stages.retrieve.index import open_store
    from shopray.stages.retrieve.ingest import build_index

    config = AppConfig(
        index=IndexConfig(name="test", root=tmp_path_factory.mktemp("index"), qdrant_url=None),
        embedding=embedding_config,
        retriever=RetrieverConfig(candidates=60, prefetch=100, min_filtered=3),
        ranker=RankerConfig(popularity_weight=0),
    )
    build_index(small_catalog, open_store(config.index), config.embedding)
    return config


@pytest.fixture(scope="session")
def serve_port(ray_session) -> int:
    """Serve's HTTP port. Every test that deploys depends on this: whichever deploys first starts
    Serve, and a Serve started by a bare ``serve.run`` would listen on 8000 instead."""
    from ray import serve

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield port
    serve.shutdown()


@pytest.fixture(scope="session")
def serve_url(app_config, serve_port) -> str:
    """The whole graph on real Ray Serve, over the small catalog; one per test session."""
    from ray import serve

    from shopray.serving.app import build_app

    serve.run(build_app(app_config.model_dump(mode="json")), name="shopray", route_prefix="/", logging_config={"encoding": "JSON"})
    return f"http://127.0.0.1:{serve_port}"


class RedisServer:
    """A redis-server on a free port, its AOF in ``dir``; restarting it on the same dir reloads what it fsynced.
    With ``password`` it runs with --requirepass, as prod's does."""

    def __init__(self, dir: Path, appendfsync: str = "always", password: str | None = None):
        self.dir, self.appendfsync, self.password, self.port = dir, appendfsync, password, free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir), "--appendonly", "yes", "--appendfsync", self.appendfsync, "--save", ""]
        args += ["--requirepass", self.password] if self.password else []
        self.proc = subprocess.Popen([str(REDIS_SERVER), *args, "--logfile", str(self.dir / "redis.log")], cwd=self.dir)
        client = redis.Redis(port=self.port, password=self.password)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except (redis.ConnectionError, redis.BusyLoadingError):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server did not start: {(self.dir / 'redis.log').read_text()[-2000:]}")
                time.sleep(0.02)
        client.close()
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final AOF flush."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


def require_redis() -> None:
    if REDIS_SERVER.exists():
        return
    if os.environ.get("SHOPRAY_REQUIRE_REDIS") == "1":
        pytest.fail(f"SHOPRAY_REQUIRE_REDIS=1 but {REDIS_SERVER} is missing")
    pytest.skip(f"{REDIS_SERVER} is missing")


@pytest.fixture
def redis_server(tmp_path):
    require_redis()
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()
