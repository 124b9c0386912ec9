"""The ``streaming:`` section of featurestore.yaml: which streams feed which push sources.

::

    streaming:
      redis_url: redis://localhost:6379/0   # the streams' Redis; default: the online store's
                                            # (FEATURESTORE_STREAM_REDIS_URL overrides)
      group: featurestore                   # consumer group; workers in it share the streams
      streams:
        - stream: trips                     # a Redis Stream key
          push_source: trips_push           # the push source its entries are rows of
      id_field: event_id                    # entry field holding an event's id (optional)
      batch_size: 2000                      # entries per read
      block_ms: 100                         # how long a read waits for new entries
      claim_idle_seconds: 60                # re-claim entries pending this long on a dead consumer
      flush_seconds: 5                      # append to the offline store (and acknowledge)
      flush_events: 100000                  #   this often, or after this many events
      start: earliest                       # a new group starts at the first entry (or: latest)

Every setting also has a ``featurestore stream`` flag, which wins.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from featurestore.config import RepoConfig, check_known_keys
from featurestore.errors import ConfigError
from featurestore.redaction import masked

__all__ = ["StreamSettings", "StreamSpec", "parse_streams"]


@dataclass(frozen=True)
class StreamSpec:
    stream: str
    push_source: str


@dataclass(frozen=True)
class StreamSettings:
    streams: tuple[StreamSpec, ...] = ()
    redis_url: str = ""
    group: str = "featurestore"
    consumer: str = ""  # default: {hostname}-{pid}
    id_field: str = "event_id"
    batch_size: int = 2000
    block_ms: int = 100
    claim_idle_seconds: float = 60.0
    flush_seconds: float = 5.0
    flush_events: int = 100_000
    start: str = "earliest"

    def __repr__(self) -> str:  # the Redis URL without its password
        shown = ", ".join(f"{f.name}={masked(getattr(self, f.name))!r}" for f in fields(self))
        return f"StreamSettings({shown})"

    @classmethod
    def from_config(cls, config: RepoConfig, env: Mapping[str, str] | None = None, **overrides: Any) -> StreamSettings:
        """The repo's ``streaming:`` section, then ``overrides`` (CLI flags; None = unset)."""
        env = os.environ if env is None else env
        raw = config.extra.get("streaming") or {}
        if not isinstance(raw, Mapping):
            raise ConfigError("featurestore.yaml: 'streaming' must be a mapping (see docs/streaming.md)")
        check_known_keys(raw, {f.name for f in fields(cls)}, "featurestore.yaml: streaming")
        values = {k: v for k, v in raw.items() if k != "streams"}
        values["streams"] = tuple(_spec(s) for s in raw.get("streams") or ())
        settings = cls(**values)
        if env.get("FEATURESTORE_STREAM_REDIS_URL"):
            settings = replace(settings, redis_url=env["FEATURESTORE_STREAM_REDIS_URL"])
        settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
        if not settings.redis_url:
            online = config.online_store
            if online.type != "redis":
                raise ConfigError(
                    "featurestore stream needs a Redis: set streaming.redis_url in featurestore.yaml "
                    "(or --redis-url, or FEATURESTORE_STREAM_REDIS_URL), or use a redis online_store"
                )
            settings = replace(settings, redis_url=online.connection_string)
        return settings.checked()

    def checked(self) -> StreamSettings:
        if not self.streams:
            raise ConfigError("no streams to consume: list them under streaming.streams in featurestore.yaml "
                              "(stream: ..., push_source: ...) or pass --stream NAME=PUSH_SOURCE")
        try:
            numbers = {name: float(getattr(self, name)) for name in
                       ("batch_size", "block_ms", "claim_idle_seconds", "flush_seconds", "flush_events")}
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"streaming settings must be numbers ({exc})") from None
        if min(numbers.values()) <= 0:
            raise ConfigError(f"streaming settings must be positive: {numbers}")
        if self.claim_idle_seconds <= 2 * self.flush_seconds:
            raise ConfigError(
                f"streaming.claim_idle_seconds ({self.claim_idle_seconds}) must exceed twice flush_seconds "
                f"({self.flush_seconds}): entries wait for the offline flush before they are acknowledged, "
                "and must not look abandoned meanwhile"
            )
        if self.start not in ("earliest", "latest"):
            raise ConfigError(f"streaming.start must be 'earliest' or 'latest', not {self.start!r}")
        if len({s.stream for s in self.streams}) != len(self.streams):
            raise ConfigError("a stream is listed twice under streaming.streams")
        return replace(self, batch_size=int(self.batch_size), block_ms=int(self.block_ms),
                       flush_events=int(self.flush_events))


def _spec(raw: Any) -> StreamSpec:
    if isinstance(raw, str) and "=" in raw:  # the CLI's NAME=PUSH_SOURCE
        stream, _, source = raw.partition("=")
        raw = {"stream": stream, "push_source": source}
    if not isinstance(raw, Mapping) or not raw.get("stream") or not raw.get("push_source"):
        raise ConfigError(f"each of streaming.streams needs 'stream' and 'push_source', got {raw!r}")
    if not re.fullmatch(r"[^\s]+", str(raw["stream"])):
        raise ConfigError(f"stream name {raw['stream']!r} may not contain spaces")
    return StreamSpec(str(raw["stream"]), str(raw["push_source"]))


def parse_streams(values: tuple[str, ...]) -> tuple[StreamSpec, ...]:
    """``--stream trips=trips_push`` flags."""
    specs = []
    for value in values:
        if "=" not in value:
            raise ConfigError(f"--stream {value!r} must look like STREAM=PUSH_SOURCE, e.g. trips=trips_push")
        specs.append(_spec(value))
    return tuple(specs)
