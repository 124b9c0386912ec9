"""The Flight server's settings: the ``flight:`` section of featurestore.yaml.

```yaml
flight:
  host: 127.0.0.1            # interface to listen on (0.0.0.0: all)
  port: 8815                 # featurestore serve --flight-port overrides it
  max_upload_bytes: 268435456   # an entity upload larger than this is refused (256 MiB)
  slots: 2                   # retrievals and batch scorings the engine runs at once
  slot_timeout: 30           # seconds a call waits for a slot before it is refused
  batch_rows: 65536          # rows per record batch sent back
  tls_cert: certs/server.crt # with tls_key: serve grpc+tls (paths relative to the repo)
  tls_key: certs/server.key
```

API keys are the HTTP server's (``serving.api_keys``, ``serving.auth_reads``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featurestore.config import RepoConfig, check_known_keys
from featurestore.errors import ConfigError

__all__ = ["DEFAULT_PORT", "FlightSettings", "flight_settings"]

#: Feast's remote offline store examples use 8815 too.
DEFAULT_PORT = 8815
_KEYS = {"host", "port", "max_upload_bytes", "slots", "slot_timeout", "batch_rows", "tls_cert", "tls_key"}


@dataclass(frozen=True)
class FlightSettings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    max_upload_bytes: int = 256 << 20
    slots: int = 2
    slot_timeout: float = 30.0
    batch_rows: int = 65_536
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def scheme(self) -> str:
        return "grpc+tls" if self.tls else "grpc+tcp"


def flight_settings(config: RepoConfig, **overrides: Any) -> FlightSettings:
    """The ``flight:`` section (ConfigError naming a bad key), then ``overrides`` that are not None."""
    raw = config.extra.get("flight") or {}
    where = "featurestore.yaml: flight"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping of settings, such as {{port: {DEFAULT_PORT}}}")
    check_known_keys(raw, _KEYS, where)
    merged = {**raw, **{k: v for k, v in overrides.items() if v is not None}}
    cert, key = merged.get("tls_cert"), merged.get("tls_key")
    if bool(cert) != bool(key):
        raise ConfigError(f"{where}: tls_cert and tls_key go together (the certificate chain and its private key)")
    return FlightSettings(
        host=_text(merged.get("host", "127.0.0.1"), "host", where),
        port=_whole(merged.get("port", DEFAULT_PORT), "port", where, low=0, high=65535),
        max_upload_bytes=_whole(merged.get("max_upload_bytes", 256 << 20), "max_upload_bytes", where, low=1),
        slots=_whole(merged.get("slots", 2), "slots", where, low=1),
        slot_timeout=_seconds(merged.get("slot_timeout", 30.0), "slot_timeout", where),
        batch_rows=_whole(merged.get("batch_rows", 65_536), "batch_rows", where, low=1),
        tls_cert=_file(cert, config.repo_path, "tls_cert", where) if cert else None,
        tls_key=_file(key, config.repo_path, "tls_key", where) if key else None,
    )


def _whole(value: Any, name: str, where: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ConfigError(f"{where}.{name} must be a whole number {bound}, not {value!r}")
    return value


def _seconds(value: Any, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
        raise ConfigError(f"{where}.{name} must be a number of seconds above 0 (e.g. 30), not {value!r}")
    return float(value)


def _text(value: Any, name: str, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}.{name} must be a host name or address, not {value!r}")
    return value


def _file(value: Any, repo: Path, name: str, where: str) -> Path:
    path = Path(str(value)).expanduser()
    path = path if path.is_absolute() else repo / path
    if not path.is_file():
        raise ConfigError(f"{where}.{name}: {path} is not a readable file")
    return path
