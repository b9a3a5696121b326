"""Shoppers' behaviour events: validated at the edge, stored in a durable log (SQLite or Redis), folded into real-time features."""

from __future__ import annotations

from shopray.events.backends import open_event_log
from shopray.events.features import Behaviour
from shopray.events.log import Appended, EventLog
from shopray.events.model import Event, EventBatch, EventType, StoredEvent
from shopray.events.redis import RedisEventLog
from shopray.events.sqlite import SqliteEventLog

__all__ = [
    "Appended", "Behaviour", "Event", "EventBatch", "EventLog", "EventType",
    "RedisEventLog", "SqliteEventLog", "StoredEvent", "open_event_log",
]
