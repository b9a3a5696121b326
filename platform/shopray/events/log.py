"""One event log interface, two backends: an SQLite file (``sqlite``) and Redis Streams (``redis``).

Both keep the same contract, so features computed from either agree: a batch
is stored all-or-nothing and durably before ``append`` returns, an event whose
key (``Event.key``) is already stored is not stored again, and readers tail the
log by an opaque cursor in append order. Deleting events (``erase_session``,
``purge``) changes ``generation()``, telling readers that what they folded in
from the log may no longer be there.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from shopray.events.model import Event, StoredEvent


@dataclass(frozen=True)
class Appended:
    accepted: int  # events stored by this call
    duplicates: int  # events already stored, or repeated earlier in the batch


class EventLog(abc.ABC):
    @abc.abstractmethod
    def append(self, events: list[Event], now: float) -> Appended:
        """Store the batch at once, durably; events without ``ts`` take ``now`` (unix seconds)."""

    @abc.abstractmethod
    def since(self, cursor: str | None, limit: int = 10_000) -> tuple[list[StoredEvent], str | None]:
        """Up to ``limit`` events after ``cursor`` (None: from the start), in append order, and the cursor to read on from."""

    @abc.abstractmethod
    def erase_session(self, session_id: str) -> int:
        """Delete every event of the session; returns how many were deleted."""

    @abc.abstractmethod
    def purge(self, before_ts: float) -> int:
        """Delete the events whose ``ts`` is before ``before_ts`` (retention); returns how many were deleted."""

    @abc.abstractmethod
    def generation(self) -> int:
        """Changes whenever events were deleted: a reader that saw another value rebuilds from the start."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "EventLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
