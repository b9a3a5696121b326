"""The event log a config names: SQLite on one machine, Redis Streams for a cluster."""

from __future__ import annotations

from shopray import broker
from shopray.config import EventsConfig
from shopray.events.log import EventLog
from shopray.events.redis import RedisEventLog
from shopray.events.sqlite import SqliteEventLog


def open_event_log(config: EventsConfig) -> EventLog:
    if config.backend == "redis":
        return RedisEventLog(broker.connect(config.redis, "events"))
    return SqliteEventLog(config.log_path())
