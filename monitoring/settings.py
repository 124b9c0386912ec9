"""Monitor settings per model: the ``monitoring:`` section of featurestore.yaml.

```yaml
monitoring:
  models:
    driver_model:            # a model name (its champion is monitored) or a URI
      schedule: "0 * * * *"  # cron, or an interval like 1h; none: on demand only
      window: 1d             # served rows of the last day (default 1d)
      min_rows: 100          # fewer: "not enough data" (default 100)
      share: 0.5             # dataset drift when this share of features drifts
      null_rate_jump: 0.1    # a null rate this much above training is flagged
      methods: {conv_rate: psi}   # override Evidently's choice ("*": every feature)
      thresholds: {ks: 0.01}      # per method
  prometheus_url: http://prometheus:9090   # asked by rollouts' PromQL checks (docs/rollouts.md)
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from featurestore.config import RepoConfig, check_known_keys
from featurestore.errors import ConfigError
from featurestore.jobs.schedule import Schedule, parse_duration

from monitoring.drift import DriftSettings

__all__ = ["MonitorSettings", "monitor_settings", "settings_for"]

_KEYS = {"schedule", "window", "min_rows", "share", "null_rate_jump", "methods", "thresholds"}


@dataclass(frozen=True)
class MonitorSettings:
    """One model's monitor: when it runs, over which window, judged how."""

    model: str
    schedule: Schedule | None = None
    window: timedelta = timedelta(days=1)
    drift: DriftSettings = field(default_factory=DriftSettings)


def monitor_settings(config: RepoConfig) -> dict[str, MonitorSettings]:
    """Every model's monitor settings from featurestore.yaml (ConfigError naming the key)."""
    section = config.extra.get("monitoring") or {}
    if isinstance(section, Mapping):
        check_known_keys(section, {"models", "prometheus_url"}, "featurestore.yaml: monitoring")
    models = section.get("models") if isinstance(section, Mapping) else None
    if not isinstance(section, Mapping) or not isinstance(models or {}, Mapping):
        raise ConfigError("featurestore.yaml: 'monitoring' must hold 'models': a mapping of model name to its "
                          "monitor settings (schedule, window, min_rows, share, null_rate_jump, methods, thresholds), "
                          "and may name a 'prometheus_url'")
    return {str(name): _settings(str(name), raw or {}) for name, raw in (models or {}).items()}


def settings_for(config: RepoConfig, model: str) -> MonitorSettings:
    """The settings of ``model`` (its section, or the defaults)."""
    return monitor_settings(config).get(model) or MonitorSettings(model)


def _settings(model: str, raw: Any) -> MonitorSettings:
    where = f"featurestore.yaml: monitoring.models.{model}"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping of settings, not {raw!r}")
    check_known_keys(raw, _KEYS, where)
    schedule = Schedule.parse(raw["schedule"], f"{where}.schedule") if raw.get("schedule") else None
    window = parse_duration(raw.get("window", "1d"), f"{where}.window")
    drift = {k: raw[k] for k in ("min_rows", "share", "null_rate_jump") if k in raw}
    try:
        settings = DriftSettings(**drift, methods=dict(raw.get("methods") or {}),
                                 thresholds=dict(raw.get("thresholds") or {}))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return MonitorSettings(model, schedule, window, settings)
