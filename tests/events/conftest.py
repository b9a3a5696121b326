"""A real redis-server per test, and the event log parametrised over both backends."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

from shopray.events import EventLog, RedisEventLog, SqliteEventLog

REDIS_SERVER = Path("/usr/bin/redis-server")
BACKENDS = ["sqlite", "redis"]
REDIS_PASSWORD = "test-only-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


@pytest.fixture
def redis_server_with_password(tmp_path):
    require_redis()
    (tmp_path / "redis-auth").mkdir()
    server = RedisServer(tmp_path / "redis-auth", password=REDIS_PASSWORD).start()
    yield server
    server.stop()


def open_log(backend: str, request, tmp_path: Path) -> EventLog:
    if backend == "redis":
        return RedisEventLog(request.getfixturevalue("redis_server").url)
    return SqliteEventLog(tmp_path / "events.sqlite")


@pytest.fixture(params=BACKENDS)
def event_log(request, tmp_path):
    with open_log(request.param, request, tmp_path) as log:
        yield log
