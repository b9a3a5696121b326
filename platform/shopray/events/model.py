"""A shopper's behaviour event as ``POST /events`` receives it, and as a log returns it.

Session ids must be pseudonymous: the log keeps them until retention purges
them, so an id that looks like an email address or a phone number is refused
rather than stored.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shopray.privacy import pseudonymous

EventType = Literal["view", "click", "add_to_cart", "purchase"]

MAX_FUTURE_S = 300.0  # client clocks run ahead by seconds, not by minutes
MAX_AGE_S = 10 * 365.25 * 86400.0
MAX_BATCH = 10_000


class Event(BaseModel):
    """One interaction of a session with a product."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    session_id: str = Field(min_length=1, max_length=128, description="Pseudonymous session or shopper id; never an email address or phone number.")
    type: EventType = Field(description="What the shopper did with the product.")
    product_id: str = Field(min_length=1, max_length=128, description="The product interacted with.")
    query: str | None = Field(default=None, max_length=512, description="The search that led to the product, if any; non-printable characters are dropped.")
    ts: float | None = Field(default=None, description="When it happened, unix seconds; absent: when the server accepted it.")
    event_id: str | None = Field(default=None, min_length=1, max_length=128, description="The client's id of the event, unique within its session: a resent event is counted once.")

    @field_validator("session_id")
    @classmethod
    def _pseudonymous(cls, v: str) -> str:
        return pseudonymous(v)  # the one rule every endpoint taking a session id applies

    @field_validator("query", mode="before")
    @classmethod
    def _printable(cls, v: object) -> object:
        if not isinstance(v, str):
            return v
        text = "".join(c if c.isprintable() else " " if c.isspace() else "" for c in v).strip()
        return text or None

    @field_validator("ts")
    @classmethod
    def _plausible(cls, v: float | None) -> float | None:
        now = time.time()
        if v is not None and v > now + MAX_FUTURE_S:
            raise ValueError(f"ts is more than {MAX_FUTURE_S:g} s in the future")
        if v is not None and v < now - MAX_AGE_S:
            raise ValueError("ts is more than 10 years old")
        return v

    def key(self) -> str:
        """The deduplication key: the same event sent twice is stored once.

        With ``event_id`` it names the event within its session. Without it the event's own fields do, so an event
        with neither ``ts`` nor ``event_id`` is counted once per session, type, product and query: a client that
        wants every repeated view counted sends one of them."""
        fields = ["id", self.session_id, self.event_id] if self.event_id is not None else ["ev", self.session_id, self.type, self.product_id, self.query, self.ts]
        return hashlib.sha256(json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


class EventBatch(BaseModel):
    """The body of ``POST /events``: stored all-or-nothing."""

    model_config = ConfigDict(extra="forbid")

    events: list[Event] = Field(min_length=1, max_length=MAX_BATCH, description="The events, oldest first.")


@dataclass(frozen=True)
class StoredEvent:
    seq: str  # the backend's cursor of this event: ``since(seq)`` returns what came after it
    session_id: str
    type: EventType
    product_id: str
    query: str | None
    ts: float  # the event's ts, or when the log accepted it
