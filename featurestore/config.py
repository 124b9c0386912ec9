"""``featurestore.yaml``: where a repo's registry, offline and online stores live.

Example::

    project: driver_ranking
    registry: data/registry.db            # a path (relative to the repo), sqlite:///abs.db,
                                          # or postgresql://user@host:5432/db (docs/scaling.md)
    offline_store: data/offline           # folder for pushed rows and saved datasets
    # offline_store:                      # or, to bound the training-set engine's memory:
    #   path: data/offline
    #   memory_limit: 12GB                # DuckDB's limit; larger joins spill to disk
    #   temp_directory: /scratch/fs-tmp   # where they spill (default: <path>/.tmp)
    #   threads: 4                        # default: one per core
    #   engine: spark                     # or Spark (docs/scaling.md): duckdb is the default
    #   master: "local[*]"                # spark://host:7077, yarn, k8s://...
    #   conf: {spark.executor.memory: 8g} # any Spark setting
    artifacts: data/artifacts             # model version files (content-addressed)
    online_store:
      type: sqlite                        # the embedded default; path defaults to data/online.db
      # type: redis
      # connection_string: redis://localhost:6379/0
      # read_timeout: 0.25                # seconds a server's online read may wait on Redis
      # cluster: false                    # true: a Redis Cluster (any node; or a redis+cluster:// URL)
    serving:
      api_keys: []                        # when set, writes need one (X-API-Key or Bearer)
      auth_reads: false                   # require a key for reads too
      auth_metrics: false                 # require a key for /metrics too
      max_entities: 1000                  # entity rows per online request
      max_features: 1000                  # feature references per online request
      header_timeout: 10                  # seconds a client has to send a request's headers
      body_timeout: 10                    # seconds a client has to send a request's body
      keep_alive_timeout: 5               # seconds an idle kept-alive connection stays open
      max_body_bytes: 1048576
      model_cache_size: 8                 # loaded model versions kept per worker (LRU)
      model_timeout: 1                    # seconds a model call may take before /predict answers 504
      model_timeouts: {fraud: 0.2}        # per model name, overriding model_timeout
      inline_call_budget_ms: 2            # a model this fast is called on the event loop (0: never)
      inline_call_budgets_ms: {fraud: 0}  # per model name, overriding inline_call_budget_ms
      default_alias: champion             # the alias /predict/{name} follows
      grafana_url: http://grafana:3000    # where the web UI (/ui) links time series
    limits:
      max_future: 1d                      # how far past now an event time or window end may be

Environment variables win over the file (a deployment points the same repo elsewhere):
``FEATURESTORE_REGISTRY``, ``FEATURESTORE_OFFLINE_STORE``, ``FEATURESTORE_ONLINE_STORE``
(``sqlite`` or ``redis``), ``FEATURESTORE_REDIS_URL``, ``FEATURESTORE_SQLITE_PATH``,
``FEATURESTORE_API_KEYS`` (comma-separated), ``FEATURESTORE_ARTIFACTS``,
``FEATURESTORE_READ_TIMEOUT`` (seconds; ``online_store.read_timeout``),
``FEATURESTORE_GRAFANA_URL`` (``serving.grafana_url``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import quote

import yaml

from featurestore.clock import DEFAULT_MAX_FUTURE, parse_duration
from featurestore.config_file import CONFIG_FILE, find_config_file
from featurestore.errors import ConfigError, FeatureStoreError, close_matches
from featurestore.redaction import mask_url, masked

__all__ = ["CONFIG_FILE", "LimitsConfig", "check_known_keys", "OfflineEngineConfig", "OnlineStoreConfig", "RepoConfig", "ServingConfig", "load_config", "valid_project_name"]



# The reprs below mask secrets: a config printed in a notebook or a log line shows the
# Redis URL without its password and how many API keys there are, never the keys.


@dataclass(frozen=True)
class OnlineStoreConfig:
    type: str = "sqlite"
    path: str = ""  # sqlite: absolute path of the database file
    connection_string: str = ""  # redis: redis://host:port/db, or redis+cluster://host:port (cluster: true)
    # redis: how long, in seconds, the server waits for one online read (and /ready for a
    # ping) before answering 503; reads never block the event loop meanwhile.
    read_timeout: float = 0.25

    def __repr__(self) -> str:
        return (f"OnlineStoreConfig(type={self.type!r}, path={self.path!r}, "
                f"connection_string={mask_url(self.connection_string)!r})")


@dataclass(frozen=True)
class ServingConfig:
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    auth_reads: bool = False
    auth_metrics: bool = False  # /metrics needs a key too (default: open, for Prometheus)
    max_entities: int = 1000
    max_features: int = 1000
    max_body_bytes: int = 1 << 20
    # Clients that stall: seconds to send a request's headers (from connecting, or from the
    # previous answer), to send its body (from its headers), and to start the next request.
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    keep_alive_timeout: float = 5.0
    # Models served by /predict and /v2 (docs/predict.md): loaded versions kept per
    # worker, seconds a model call may take (per model name in model_timeouts), and the
    # alias a bare model name follows. A model whose calls take at most
    # inline_call_budget_ms of CPU is called on the event loop, without a thread hop
    # (serving/inline_calls.py); 0 (per model name in inline_call_budgets_ms) never.
    model_cache_size: int = 8
    model_timeout: float = 1.0
    model_timeouts: Mapping[str, float] = field(default_factory=dict)
    inline_call_budget_ms: float = 2.0
    inline_call_budgets_ms: Mapping[str, float] = field(default_factory=dict)
    default_alias: str = "champion"
    # The web UI (/ui) links its time series here rather than drawing them (docs/ui.md).
    grafana_url: str | None = None

    def __repr__(self) -> str:
        return (f"ServingConfig(api_keys=<{len(self.api_keys)} hidden>, auth_reads={self.auth_reads}, "
                f"auth_metrics={self.auth_metrics}, max_entities={self.max_entities}, "
                f"max_body_bytes={self.max_body_bytes})")


@dataclass(frozen=True)
class LimitsConfig:
    """Bounds on what the store takes (docs/security.md)."""

    # An event time (push, stream) or a materialization window's end may be at most this
    # far past now; featurestore/clock.py: TimeRange enforces it.
    max_future: timedelta = DEFAULT_MAX_FUTURE


@dataclass(frozen=True)
class OfflineEngineConfig:
    """How the offline engine (DuckDB) may use the machine; None: DuckDB's default.
    ``engine: spark`` runs it on Spark instead, on ``master`` with ``conf``."""

    memory_limit: str | None = None
    temp_directory: Path | None = None  # absolute; None: <offline_store>/.tmp
    threads: int | None = None
    engine: str = "duckdb"
    master: str = "local[*]"
    conf: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RepoConfig:
    """A loaded, validated ``featurestore.yaml``; every path in it is absolute."""

    project: str
    repo_path: Path
    registry: str
    offline_store: Path
    online_store: OnlineStoreConfig = field(default_factory=OnlineStoreConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    # Where model version files live: a folder (absolute) or an object store URL later.
    artifacts: str = ""
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    offline_engine: OfflineEngineConfig = field(default_factory=OfflineEngineConfig)
    # Extra top-level sections (scheduler, streaming, ...) for the subsystems that own them.
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"RepoConfig(project={self.project!r}, repo_path={self.repo_path!r}, "
                f"registry={masked(self.registry)!r}, offline_store={self.offline_store!r}, "
                f"online_store={self.online_store!r}, serving={self.serving!r}, limits={self.limits!r}, "
                f"extra={masked(self.extra)!r})")


def check_known_keys(raw: Mapping, known: Iterable[str], where: str, *, ignored: Iterable[str] = ()) -> None:
    """ConfigError naming the keys of settings section ``where`` that ``known`` lacks (and
    the known key a lone one looks like a misspelling of), then the known keys. ``ignored``
    keys pass unlisted: Feast's settings with no meaning here."""
    known = set(known)
    unknown = sorted(map(str, set(raw) - known - set(ignored)))
    if not unknown:
        return
    hint = close_matches(unknown[0], known) if len(unknown) == 1 else []
    raise ConfigError(
        f"{where}: unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
        + (f"did you mean {hint[0]!r}? " if hint else "")
        + f"known: {', '.join(sorted(known))}"
    )


def load_config(repo_path: str | os.PathLike, env: Mapping[str, str] | None = None) -> RepoConfig:
    """Read ``featurestore.yaml`` (or Feast's ``feature_store.yaml``) in ``repo_path`` and
    apply environment overrides."""
    env = os.environ if env is None else env
    repo = Path(repo_path).resolve()
    file = find_config_file(repo)
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{file} is not valid YAML{line}: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{file} must be a mapping of settings, not {type(raw).__name__}")
    return _build(raw, repo, file, env)


#: Sections read by other subsystems from ``RepoConfig.extra``.
_SECTIONS = {"flight", "monitoring", "scheduler", "serving_log", "streaming"}
#: Feast settings with no meaning here, accepted so a ported feature_store.yaml loads.
_FEAST_ONLY = {"provider", "entity_key_serialization_version", "flags", "feature_server", "batch_engine",
               "auth", "coerce_tz_aware", "repo_path"}


def valid_project_name(name: str) -> bool:
    """Whether ``name`` may be a project's: letters, digits, _ and - (not starting with a
    digit); Feast's names (letters, digits, _) all are."""
    return name.replace("-", "_").isidentifier()


def _build(raw: dict, repo: Path, file: Path, env: Mapping[str, str]) -> RepoConfig:
    known = {"project", "registry", "offline_store", "online_store", "serving", "artifacts", "limits"}
    check_known_keys(raw, known | _SECTIONS, str(file), ignored=_FEAST_ONLY)
    project = raw.get("project")
    if not isinstance(project, str) or not valid_project_name(project):
        raise ConfigError(f"{file}: 'project' must be a name of letters, digits, _ or -, got {project!r}")

    registry = env.get("FEATURESTORE_REGISTRY") or raw.get("registry") or "data/registry.db"
    if isinstance(registry, dict):  # Feast's form: {registry_type: file, path: ...}
        kind = registry.get("registry_type", "file")
        if kind not in ("file", "sql") or not isinstance(registry.get("path"), str):
            raise ConfigError(f"{file}: 'registry' must be a path or URL (or a mapping with a 'path'), got {registry!r}")
        registry = registry["path"]
    if not isinstance(registry, str):
        raise ConfigError(f"{file}: 'registry' must be a path, a sqlite:/// or a postgresql:// URL, not {registry!r}")
    if "://" not in registry:
        registry = str(_absolute(repo, registry))

    offline = raw.get("offline_store") or "data/offline"
    engine = _offline_engine(offline if isinstance(offline, dict) else {}, repo, file)
    if isinstance(offline, dict):
        offline = offline.get("path") or "data/offline"
    offline = _absolute(repo, str(env.get("FEATURESTORE_OFFLINE_STORE") or offline))

    artifacts = env.get("FEATURESTORE_ARTIFACTS") or raw.get("artifacts") or "data/artifacts"
    if not isinstance(artifacts, str):
        raise ConfigError(f"{file}: 'artifacts' must be a folder path, not {artifacts!r}")
    if "://" not in artifacts:
        artifacts = str(_absolute(repo, artifacts))

    return RepoConfig(
        project=project,
        repo_path=repo,
        registry=registry,
        offline_store=offline,
        online_store=_online(raw.get("online_store") or {}, repo, file, env),
        serving=_serving(raw.get("serving") or {}, file, env),
        artifacts=artifacts,
        limits=_limits(raw.get("limits") or {}, file),
        offline_engine=engine,
        extra={k: v for k, v in raw.items() if k not in known},
    )


def _offline_engine(raw: dict, repo: Path, file: Path) -> OfflineEngineConfig:
    memory, temp, threads = raw.get("memory_limit"), raw.get("temp_directory"), raw.get("threads")
    if memory is not None and not (isinstance(memory, str) and memory.strip()[:1].isdigit()):
        raise ConfigError(f"{file}: offline_store.memory_limit must be a size like '12GB', not {memory!r}")
    if temp is not None and not (isinstance(temp, str) and temp):
        raise ConfigError(f"{file}: offline_store.temp_directory must be a folder path, not {temp!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"{file}: offline_store.threads must be a whole number of at least 1, not {threads!r}")
    kind = str(raw.get("engine") or "duckdb").lower()
    if kind not in ("duckdb", "spark"):
        raise ConfigError(f"{file}: offline_store.engine must be duckdb or spark, not {raw.get('engine')!r}")
    master, conf = raw.get("master") or "local[*]", raw.get("conf") or {}
    if not isinstance(master, str):
        raise ConfigError(f"{file}: offline_store.master must be a Spark master URL like 'local[*]', not {master!r}")
    if not isinstance(conf, dict):
        raise ConfigError(f"{file}: offline_store.conf must be a mapping of Spark settings, not {conf!r}")
    return OfflineEngineConfig(memory, _absolute(repo, temp) if temp else None, threads, kind, master,
                               {str(k): str(v) for k, v in conf.items()})


def _online(raw: Any, repo: Path, file: Path, env: Mapping[str, str]) -> OnlineStoreConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: 'online_store' must be a mapping with a 'type' (sqlite or redis)")
    kind = str(env.get("FEATURESTORE_ONLINE_STORE") or raw.get("type") or "sqlite").lower()
    if env.get("FEATURESTORE_REDIS_URL") and not env.get("FEATURESTORE_ONLINE_STORE"):
        kind = "redis"
    if kind == "sqlite":
        path = env.get("FEATURESTORE_SQLITE_PATH") or raw.get("path") or "data/online.db"
        return OnlineStoreConfig(type="sqlite", path=str(_absolute(repo, str(path))))
    if kind == "redis":
        url = env.get("FEATURESTORE_REDIS_URL") or raw.get("connection_string") or "redis://localhost:6379/0"
        if "://" not in url:  # Feast writes "host:port[,password=...,ssl=true,db=N]"
            url = feast_redis_url(str(url), file)
        timeout = raw.get("read_timeout", 0.25)
        if env.get("FEATURESTORE_READ_TIMEOUT"):
            try:
                timeout = float(env["FEATURESTORE_READ_TIMEOUT"])
            except ValueError:
                raise ConfigError(f"FEATURESTORE_READ_TIMEOUT must be a number of seconds, not "
                                  f"{env['FEATURESTORE_READ_TIMEOUT']!r}") from None
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 60:
            raise ConfigError(f"{file}: online_store.read_timeout must be a number of seconds above 0 and at most "
                              f"60 (e.g. 0.25), not {timeout!r}")
        if _redis_cluster(raw, file):  # one spelling downstream: the redis+cluster:// URL
            from featurestore.online.redis_protocol import cluster_url

            url = cluster_url(url)
        return OnlineStoreConfig(type="redis", connection_string=url, read_timeout=float(timeout))
    raise ConfigError(f"{file}: online_store type {kind!r} is not supported; use 'sqlite' or 'redis'")


#: The options of Feast's comma form that have a place in a Redis URL.
_FEAST_REDIS_OPTIONS = ("password", "username", "ssl", "db")


def feast_redis_url(value: str, file: Path | str = CONFIG_FILE) -> str:
    """The ``redis://`` URL of Feast's connection string ``host:port[,host:port...][,key=value...]``
    (``password``, ``username``, ``ssl``, ``db``). Feast connects to the first address unless
    ``redis_type`` is ``redis_cluster``; a cluster needs only one node's address to find the others,
    so the first is the one kept either way."""
    parts = [part.strip() for part in value.split(",") if part.strip()]
    addresses = [part for part in parts if "=" not in part]
    options = {key.strip(): setting for key, _, setting in (part.partition("=") for part in parts if "=" in part)}
    unknown = sorted(set(options) - set(_FEAST_REDIS_OPTIONS))
    if unknown:
        raise ConfigError(f"{file}: online_store.connection_string option {unknown[0]!r} is not understood; Feast's "
                          f"form takes {', '.join(_FEAST_REDIS_OPTIONS)} (host:port,password=...,ssl=true,db=0), or "
                          "write a URL: redis://[username:password@]host:port/db (rediss:// for TLS)")
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"{file}: online_store.connection_string part {address!r} is neither host:port nor "
                              "key=value; a password with a comma in it goes in a URL instead, the comma "
                              "written %2C: redis://:pass%2Cword@host:port/0")
    if not addresses:
        raise ConfigError(f"{file}: online_store.connection_string names no host:port; "
                          "write host:port[,password=...,ssl=true,db=0] or redis://host:port/db")
    ssl = options.get("ssl", "false").strip().lower()
    if ssl not in ("true", "false"):
        raise ConfigError(f"{file}: online_store.connection_string ssl must be true or false, not {ssl!r}")
    db = options.get("db", "").strip()
    if db and not db.isdigit():
        raise ConfigError(f"{file}: online_store.connection_string db must be a database number like 0, not {db!r}")
    user, password = (quote(options.get(key, ""), safe="") for key in ("username", "password"))
    login = f"{user}:{password}@" if user or password else ""
    return f"{'rediss' if ssl == 'true' else 'redis'}://{login}{addresses[0]}" + (f"/{db}" if db else "")


#: Feast's ``online_store.redis_type`` as our ``cluster`` (its ``redis_sentinel`` has no counterpart here).
_FEAST_REDIS_TYPES = {"redis": False, "redis_cluster": True}


def _redis_cluster(raw: dict, file: Path) -> bool:
    """``online_store.cluster``, or what Feast's ``redis_type`` in a ported file means by it."""
    cluster = raw.get("cluster")
    if cluster is not None and not isinstance(cluster, bool):
        raise ConfigError(f"{file}: online_store.cluster must be true or false, not {cluster!r}")
    if "redis_type" not in raw:
        return bool(cluster)
    redis_type = raw["redis_type"]
    if redis_type not in _FEAST_REDIS_TYPES:
        raise ConfigError(f"{file}: online_store.redis_type {redis_type!r} is not supported; use redis or "
                          "redis_cluster (or our cluster: true/false)")
    if cluster is not None and cluster != _FEAST_REDIS_TYPES[redis_type]:
        raise ConfigError(f"{file}: online_store.cluster: {str(cluster).lower()} and redis_type: {redis_type} "
                          "disagree; keep one of them")
    return _FEAST_REDIS_TYPES[redis_type]


def _serving(raw: Any, file: Path, env: Mapping[str, str]) -> ServingConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: 'serving' must be a mapping")
    # A misspelt key (api_key) must not leave writes open while the file looks protected.
    check_known_keys(raw, {f.name for f in fields(ServingConfig)}, f"{file}: serving")
    keys = raw.get("api_keys") or []
    if env.get("FEATURESTORE_API_KEYS"):
        keys = [k.strip() for k in env["FEATURESTORE_API_KEYS"].split(",") if k.strip()]
    if isinstance(keys, str) or not all(isinstance(k, str) and k for k in keys):
        raise ConfigError(f"{file}: serving.api_keys must be a list of non-empty strings")
    try:
        return ServingConfig(
            api_keys=tuple(keys),
            auth_reads=_flag(raw.get("auth_reads", False), "serving.auth_reads", file),
            auth_metrics=_flag(raw.get("auth_metrics", False), "serving.auth_metrics", file),
            max_entities=int(raw.get("max_entities", 1000)),
            max_features=int(raw.get("max_features", 1000)),
            header_timeout=_seconds(raw, "header_timeout", 10.0, file),
            body_timeout=_seconds(raw, "body_timeout", 10.0, file),
            keep_alive_timeout=_seconds(raw, "keep_alive_timeout", 5.0, file),
            max_body_bytes=int(raw.get("max_body_bytes", 1 << 20)),
            model_cache_size=_count(raw, "model_cache_size", 8, file),
            model_timeout=_seconds(raw, "model_timeout", 1.0, file),
            model_timeouts=_timeouts(raw.get("model_timeouts") or {}, file),
            inline_call_budget_ms=_budget(raw.get("inline_call_budget_ms", 2.0), "inline_call_budget_ms", file),
            inline_call_budgets_ms=_budgets(raw.get("inline_call_budgets_ms") or {}, file),
            default_alias=_alias(raw.get("default_alias", "champion"), file),
            grafana_url=_url(env.get("FEATURESTORE_GRAFANA_URL") or raw.get("grafana_url"), file),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{file}: serving limits must be integers ({exc})") from None


def _url(value: Any, file: Path) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ConfigError(f"{file}: serving.grafana_url must be an http(s) URL such as http://grafana:3000, "
                          f"not {value!r}")
    return value.rstrip("/")


def _seconds(raw: dict, name: str, default: float, file: Path) -> float:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
        raise ConfigError(f"{file}: serving.{name} must be a number of seconds above 0 (e.g. {default:g}), "
                          f"not {value!r}")
    return float(value)


def _count(raw: dict, name: str, default: int, file: Path) -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{file}: serving.{name} must be a whole number above 0 (e.g. {default}), not {value!r}")
    return value


def _timeouts(raw: Any, file: Path) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: serving.model_timeouts must map model names to seconds, e.g. {{fraud: 0.2}}")
    return {str(name): _seconds({f"model_timeouts.{name}": v}, f"model_timeouts.{name}", 1.0, file)
            for name, v in raw.items()}


def _budget(value: Any, name: str, file: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1000:
        raise ConfigError(f"{file}: serving.{name} must be a number of milliseconds from 0 (never inline) to 1000 "
                          f"(e.g. 2), not {value!r}")
    return float(value)


def _budgets(raw: Any, file: Path) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: serving.inline_call_budgets_ms must map model names to milliseconds, e.g. "
                          "{fraud: 0}")
    return {str(name): _budget(v, f"inline_call_budgets_ms.{name}", file) for name, v in raw.items()}


def _alias(value: Any, file: Path) -> str:
    from featurestore.models.uri import check_alias  # models sit above config

    try:
        return check_alias(value)
    except FeatureStoreError as exc:
        raise ConfigError(f"{file}: serving.default_alias: {exc}") from None


def _limits(raw: Any, file: Path) -> LimitsConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: 'limits' must be a mapping, such as {{max_future: 1d}}")
    check_known_keys(raw, {"max_future"}, f"{file}: limits")
    return LimitsConfig(max_future=parse_duration(raw.get("max_future", DEFAULT_MAX_FUTURE), f"{file}: limits.max_future"))


def _flag(value: Any, name: str, file: Path) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{file}: {name} must be true or false, not {value!r}")


def _absolute(repo: Path, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else repo / p
