"""Following "the current version of X": the index a pointer names, the model an alias names.

A reference (an index's ``CURRENT`` pointer or Qdrant alias, a registry alias)
names one version at a time. ``Follower`` holds the object built for the
version named now. Every ``every_s`` the next reader of ``current`` asks
``resolve`` again (a pointer or alias read: cheap); when the answer changed,
``build`` runs on a background thread (loading a model or starting an engine
takes seconds) and its result replaces the old object in one assignment.
Requests that already hold the old object finish on it; ``retire`` runs on it
``grace_s`` later. A version whose build failed is not retried until the
reference names another one.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Generic, Hashable, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class Follower(Generic[K, T]):
    def __init__(
        self,
        resolve: Callable[[], K | None],
        build: Callable[[K], T],
        *,
        name: str,
        every_s: float,
        retire: Callable[[T], None] | None = None,
        grace_s: float = 0.0,
    ):
        self.name, self.every_s = name, every_s
        self._resolve, self._build = resolve, build
        self._retire, self._grace_s = retire, grace_s
        self._lock = threading.Lock()
        self._key: K | None = None
        self._value: T | None = None
        self._target: K | None = None  # the newest key a build was started for
        self._failed: K | None = None
        self._checked = time.monotonic()

    @classmethod
    def fixed(cls, value: T, name: str = "fixed") -> "Follower[str, T]":
        """A follower of something that never changes (a test's scorer, the bi-encoder)."""
        follower: Follower[str, T] = cls(lambda: name, lambda _: value, name=name, every_s=0)
        follower._key, follower._value = name, value
        return follower

    @property
    def current(self) -> T | None:
        """The object for the version named at the last check (None until one was built)."""
        if self.every_s > 0 and time.monotonic() - self._checked >= self.every_s and self._lock.acquire(blocking=False):
            try:
                key = self._due()
            finally:
                self._lock.release()
            if key is not None:
                threading.Thread(target=self._swap_in, args=(key,), name=f"follow-{self.name}", daemon=True).start()
        return self._value

    @property
    def key(self) -> K | None:
        return self._key

    @property
    def building(self) -> bool:
        """A build is running for a version other than the current one."""
        return self._target is not None and self._target != self._key and self._target != self._failed

    def check(self, wait: bool = False) -> bool:
        """Resolve now. A new version is built in the background, or with ``wait`` in this thread (its error
        raised). Returns whether a new object was swapped in (always False without ``wait``)."""
        with self._lock:
            key = self._due()
        if key is None:
            return False
        if wait:
            return self._swap_in(key, raise_errors=True)
        threading.Thread(target=self._swap_in, args=(key,), name=f"follow-{self.name}", daemon=True).start()
        return False

    def retarget(self, resolve: Callable[[], K | None], wait: bool = False) -> bool:
        """Follow another reference (Serve's ``reconfigure`` pins a model); checks at once."""
        with self._lock:
            self._resolve, self._failed = resolve, None
        return self.check(wait)

    def _due(self) -> K | None:
        """Under the lock: the key to build now, or None."""
        self._checked = time.monotonic()
        try:
            key = self._resolve()
        except Exception:  # an unreadable pointer must not fail requests that hold a good version
            log.warning("%s: resolving the current version failed; keeping %s", self.name, self._key, exc_info=True)
            return None
        if key is None or key in (self._key, self._target, self._failed):
            return None
        self._target = key
        return key

    def _swap_in(self, key: K, raise_errors: bool = False) -> bool:
        try:
            value = self._build(key)
        except Exception:
            log.exception("%s: building %s failed; still serving %s", self.name, key, self._key)
            with self._lock:
                self._failed = key
            if raise_errors:
                raise
            return False
        with self._lock:
            if key != self._target:  # the reference moved on while this one was built
                stale, old = value, None
            else:
                stale, old = None, self._value
                self._key, self._value = key, value
        for retired in (stale, old):
            if retired is not None and self._retire is not None:
                threading.Timer(self._grace_s, self._retire, (retired,)).start()
        if stale is None:
            log.info("%s: now serving %s", self.name, key)
        return stale is None
