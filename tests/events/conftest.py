"""The event log parametrised over both backends (the redis-server per test: ``tests/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopray import broker
from shopray.config import RedisConfig
from shopray.events import EventLog, RedisEventLog, SqliteEventLog

from ..conftest import RedisServer, require_redis

BACKENDS = ["sqlite", "redis"]
REDIS_PASSWORD = "test-only-password"


@pytest.fixture
def redis_server_with_password(tmp_path):
    require_redis()
    (tmp_path / "redis-auth").mkdir()
    server = RedisServer(tmp_path / "redis-auth", password=REDIS_PASSWORD).start()
    yield server
    server.stop()


def open_log(backend: str, request, tmp_path: Path) -> EventLog:
    if backend == "redis":
        return RedisEventLog(broker.connect(RedisConfig(url=request.getfixturevalue("redis_server").url), "events"))
    return SqliteEventLog(tmp_path / "events.sqlite")


@pytest.fixture(params=BACKENDS)
def event_log(request, tmp_path):
    with open_log(request.param, request, tmp_path) as log:
        yield log
