"""How far a bootstrap training has come, in a file beside the registry that every process can read.

The training task writes ``<registry>/<kind>/.training/<key>.json`` (atomically,
and at least every ``HEARTBEAT_S`` while it runs); `shopray serve` draws its
progress bars from it, and a serving replica that finds no model yet says
``*_warming`` while the file is fresh and ``*_unavailable`` otherwise. The file
goes when the model is registered; a failure stays in it, with the error.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from pydantic import BaseModel, Field

from shopray.registry import Registry
from shopray.versions import atomic_write_text

HEARTBEAT_S = 5.0
STALE_S = 60.0  # no heartbeat for this long: the training process is gone


class Progress(BaseModel):
    kind: str = Field(description="What is trained: parser or ranker.")
    key: str = Field(description="The content key the model will carry.")
    phase: str = Field(default="queued", description="What the task is doing now.")
    done: float = Field(default=0.0, ge=0, le=1, description="Share of the whole training done.")
    started_at: float = Field(default_factory=time.time, description="Unix time the task started.")
    updated_at: float = Field(default_factory=time.time, description="Unix time of the last report or heartbeat.")
    error: str | None = Field(default=None, description="Why the training failed, when it did.")

    @property
    def eta_s(self) -> float | None:
        elapsed = self.updated_at - self.started_at
        return elapsed * (1 - self.done) / self.done if self.done > 0.02 else None

    def running(self, now: float | None = None) -> bool:
        return self.error is None and (now or time.time()) - self.updated_at < STALE_S


def path(registry: Registry, kind: str, key: str) -> Path:
    return registry.root / kind / ".training" / f"{key}.json"


def read(registry: Registry, kind: str, key: str) -> Progress | None:
    try:
        return Progress.model_validate_json(path(registry, kind, key).read_text())
    except (FileNotFoundError, ValueError):
        return None


class Reporter:
    """Written by the training task: ``update`` as it goes, ``close`` when the model is registered, ``fail`` otherwise."""

    def __init__(self, registry: Registry, kind: str, key: str):
        self.file = path(registry, kind, key)
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self.state = Progress(kind=kind, key=key)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._write()
        threading.Thread(target=self._heartbeat, name="bootstrap-heartbeat", daemon=True).start()

    def _write(self) -> None:
        with self._lock:
            self.state.updated_at = time.time()
            atomic_write_text(self.file, self.state.model_dump_json())

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self._write()

    def update(self, phase: str, done: float) -> None:
        if self.state.phase == "queued":  # the ETA counts from when the work began, not from the queue
            self.state.started_at = time.time()
        self.state.phase, self.state.done = phase, min(1.0, max(0.0, done))
        self._write()

    def close(self) -> None:
        self._stop.set()
        self.file.unlink(missing_ok=True)

    def fail(self, error: str) -> None:
        self._stop.set()
        self.state.error = error
        self._write()
