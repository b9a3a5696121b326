"""The event log a config names: SQLite on one machine, Redis Streams for a cluster."""

from __future__ import annotations

import redis

from shopray.config import EventsConfig
from shopray.events.log import EventLog
from shopray.events.redis import RedisEventLog
from shopray.events.sqlite import SqliteEventLog


def open_event_log(config: EventsConfig) -> EventLog:
    if config.backend == "redis":
        password = config.redis_password()
        try:
            return RedisEventLog(config.redis_url, password=password)
        except redis.AuthenticationError as e:
            # Redis's own text ("HELLO must be called with the client already authenticated") names neither the
            # password nor where it comes from; an operator needs the variable to fix it.
            source = (f"${config.redis_password_env}, which is {'set' if password else 'unset or empty'}" if config.redis_password_env
                      else "nowhere: events.redis_password_env is null")
            raise redis.AuthenticationError(f"event log: Redis refused to authenticate ({e}); its password comes from {source}") from e
    return SqliteEventLog(config.log_path())
