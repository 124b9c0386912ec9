"""The ``serving_log:`` section of featurestore.yaml. Every key is optional::

    serving_log:
      enabled: true           # false: the server logs nothing (env FEATURESTORE_SERVING_LOG=off)
      sample_rate: 1.0        # share of /predict requests logged (feature services: their LoggingConfig)
      queue_rows: 100000      # rows waiting to be written at most; more are dropped and counted
      flush_rows: 10000       # write as soon as this many rows wait...
      flush_seconds: 2        # ...or when the oldest waiting row is this old
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from featurestore.config import RepoConfig, check_known_keys
from featurestore.errors import ConfigError

__all__ = ["ServingLogSettings"]


@dataclass(frozen=True)
class ServingLogSettings:
    enabled: bool = True
    sample_rate: float = 1.0
    queue_rows: int = 100_000
    flush_rows: int = 10_000
    flush_seconds: float = 2.0

    @classmethod
    def from_config(cls, config: RepoConfig, env: Mapping[str, str]) -> ServingLogSettings:
        raw = config.extra.get("serving_log") or {}
        where = f"{config.repo_path / 'featurestore.yaml'}: serving_log"
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where} must be a mapping of settings")
        defaults = {f.name: f.default for f in fields(cls)}
        check_known_keys(raw, defaults, where)
        values = {**defaults, **raw}
        switch = env.get("FEATURESTORE_SERVING_LOG", "").lower()
        if switch:
            if switch not in ("on", "off"):
                raise ConfigError(f"FEATURESTORE_SERVING_LOG must be 'on' or 'off', not {switch!r}")
            values["enabled"] = switch == "on"
        if not isinstance(values["enabled"], bool):
            raise ConfigError(f"{where}.enabled must be true or false, not {values['enabled']!r}")
        rate = values["sample_rate"]
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ConfigError(f"{where}.sample_rate must be a number from 0 to 1 (1 logs every /predict), not {rate!r}")
        for name in ("queue_rows", "flush_rows"):
            if isinstance(values[name], bool) or not isinstance(values[name], int) or values[name] < 1:
                raise ConfigError(f"{where}.{name} must be a whole number of rows above 0, not {values[name]!r}")
        seconds = values["flush_seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= 3600:
            raise ConfigError(f"{where}.flush_seconds must be a number of seconds above 0 (e.g. 2), not {seconds!r}")
        return cls(values["enabled"], float(rate), values["queue_rows"], values["flush_rows"], float(seconds))
