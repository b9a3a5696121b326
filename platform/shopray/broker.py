"""Redis, the broker that replicas on several machines share: the event log and the catalog feed connect here.

Durability: the server must run with ``appendonly yes`` and ``appendfsync always``; only then does it answer a
write after it is fsynced to its append-only file, so an acknowledged write survives a crash of Redis itself.
Without the AOF a crash loses what came after the last snapshot, with ``everysec`` up to a second of
acknowledged writes; ``connect`` logs a warning when it sees either. Redis 7 or later (the scripts declare
flags), one server (and its replicas), not Redis Cluster: a script touches keys it computes. The password is a
parameter, never part of the URL: it comes from the environment variable the config names, so it stays out of
config files.
"""

from __future__ import annotations

import logging

import redis

from shopray.config import RedisConfig

log = logging.getLogger(__name__)


def connect(config: RedisConfig, section: str, *, binary: bool = False) -> redis.Redis:
    """A client of ``config``'s server, authenticated and checked for durability. ``section`` is the config section
    that names the server (``events``, ``index.feed``), for messages; ``binary``: replies as bytes, not text."""
    password = config.password()
    client = redis.Redis.from_url(config.url, password=password, decode_responses=not binary)
    try:
        _check_durability(client, section)
    except redis.AuthenticationError as e:
        # Redis's own text ("HELLO must be called with the client already authenticated") names neither the
        # password nor where it comes from; an operator needs the variable to fix it.
        source = (f"${config.password_env}, which is {'set' if password else 'unset or empty'}" if config.password_env
                  else f"nowhere: {section}.redis.password_env is null")
        raise redis.AuthenticationError(f"{section}: Redis refused to authenticate ({e}); its password comes from {source}") from e
    return client


def _check_durability(client: redis.Redis, section: str) -> None:
    kwargs = client.connection_pool.connection_kwargs
    server = f"{kwargs.get('host')}:{kwargs.get('port')}"  # not the URL: it may hold a password
    try:
        config = client.config_get("append*")
    except redis.ResponseError:  # managed servers often disable CONFIG
        log.warning("%s on %s: cannot read the server's appendfsync; acknowledged writes survive a Redis crash only with appendfsync always", section, server)
        return
    config = {_text(k): _text(v) for k, v in config.items()}
    if config.get("appendonly") != "yes" or config.get("appendfsync") != "always":
        log.warning(
            "%s on %s: Redis runs with appendonly %s, appendfsync %s: acknowledged writes may be lost in a Redis crash (set appendonly yes, appendfsync always)",
            section, server, config.get("appendonly"), config.get("appendfsync"),
        )


def _text(v: str | bytes) -> str:
    return v.decode() if isinstance(v, bytes) else v
