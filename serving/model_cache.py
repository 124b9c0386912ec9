"""``ModelCache``: the model versions a server worker serves, loaded lazily and kept by version.

- **Names.** ``name`` (its ``serving.default_alias``, ``champion`` unless configured),
  ``name@alias`` or ``name/3``. Aliases are resolved from a map of every alias of the
  project, read from the registry at start and again whenever the ``model_alias`` kind's
  revision moves: the server's registry watch asks each tick (one indexed read), so an
  alias move is served within a tick (a second) without a restart, and a request never
  reads the registry. A name the map does not know is asked of the registry, which
  answers 404 with the close matches (or the version, if the alias was set since).
- **Loading.** A version is loaded on first use, in a worker thread (reading and hashing
  its artifact is blocking I/O), once however many requests ask at the same time, and
  kept in a bounded LRU (``serving.model_cache_size`` versions). The default alias of
  every model is loaded at start, and an alias's new target as soon as it moves.
- **Failures.** A version that fails to load answers 503 naming it and is not
  remembered: the next request tries again. Nothing a model does at load time takes the
  worker down. An unknown version is a 404 as anywhere else.
- **Rollouts.** The running or paused rollouts (docs/rollouts.md) are re-read whenever
  the ``rollout`` kind's revision moves, on the same watch tick, so a weight change
  reaches every worker within a tick; a candidate is loaded as soon as its rollout is
  seen. ``route`` says which rollout, if any, splits a request.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from featurestore.bounded import BoundedCache
from featurestore.errors import FeatureStoreError, InputError, NotFoundError, RegistryError
from featurestore.models.inputs import InputSpec, input_spec
from featurestore.models.loaded import LoadedModel
from featurestore.models.records import ModelVersion
from featurestore.models.routing import Route, routes
from featurestore.models.uri import ModelURI, parse_uri
from monitoring import metric_batches
from monitoring.metrics import (
    MODEL_INFO, MODEL_INLINE, PREDICTION_DURATION, PREDICTIONS, ROLLOUT_FAILED_CHECKS, ROLLOUT_WEIGHT,
)
from serving.disclosure import scrub
from serving.errors import HTTPError
from serving.inline_calls import InlineGate

__all__ = ["ModelCache", "ServedModel", "VARIANT"]

log = logging.getLogger("featurestore.serving")

#: The variant every answer names until a rollout routes traffic between versions.
VARIANT = "stable"


@dataclass(eq=False)
class ServedModel:
    """A loaded version with what serving it needs: its deadline, whether it is called
    inline (``serving.inline_calls``) and metric children."""

    loaded: LoadedModel
    timeout: float
    gate: InlineGate
    counters: dict[str, Any] = field(default_factory=dict)  # (status, variant) -> batched counter's inc
    observe: dict[str, Any] = field(default_factory=dict)   # stage -> batched histogram's observe
    inline_mode: Any = None                                  # featurestore_model_inline's set

    @property
    def version(self) -> ModelVersion:
        return self.loaded.version

    # What a request needs of the version and does not change while it is loaded: worked
    # out on first use (an error, such as a version without a signature, is raised to
    # each request that asks, as before), then a plain attribute.
    @functools.cached_property
    def spec(self) -> InputSpec:
        """The version's ``input_spec``: what it reads and its input layout."""
        return input_spec(self.loaded.version)

    @functools.cached_property
    def uri(self) -> str:
        """The version's ``name/version`` (``ModelVersion.uri`` builds it on every call)."""
        return self.loaded.version.uri

    @functools.cached_property
    def shadow(self) -> tuple[str, float]:
        """What the serving log entry of a request it shadows names it by: URI, model timeout."""
        return self.uri, self.timeout

    @functools.cached_property
    def takes_matrix(self) -> bool:
        """Whether its predictor takes the numpy matrix of its inputs (``MatrixPredictor``)."""
        takes = getattr(self.loaded.predictor, "takes_matrix", None)
        return takes is not None and takes(self.spec.columns)

    def count(self, status: str, variant: str = VARIANT, n: int = 1) -> None:
        counter = self.counters.get((status, variant))
        if counter is None:
            v = self.version
            counter = self.counters[status, variant] = metric_batches.counter(
                PREDICTIONS.labels(v.name, str(v.version), variant, status)).inc
        counter(n)


class ModelCache:
    def __init__(self, store, *, size: int = 8, default_alias: str = "champion", timeout: float = 1.0,
                 timeouts: Mapping[str, float] | None = None, inline_budget: float = 0.002,
                 inline_budgets: Mapping[str, float] | None = None):
        """``timeout(s)``: seconds a model call may take (per model name); ``inline_budget(s)``:
        seconds of CPU under which a model's calls may run inline (0: never; per model name)."""
        self._store = store
        self.size, self.default_alias = size, default_alias
        self.timeout, self.timeouts = timeout, dict(timeouts or {})
        self.inline_budget, self.inline_budgets = inline_budget, dict(inline_budgets or {})
        self._loaded: OrderedDict[tuple[str, int], ServedModel] = OrderedDict()
        self._loading: dict[tuple[str, int], asyncio.Future] = {}
        self._aliases: dict[tuple[str, str], int] = {}
        self._revision = -1
        self._routes: dict[str, Route] = {}
        self._routes_revision = -1
        self._warming: set[asyncio.Task] = set()
        self._parsed: BoundedCache[str, ModelURI] = BoundedCache(256)  # the path's text, parsed (~3 µs)
        self.on_load = None  # called (no arguments) on the event loop after a version is loaded
        self._loop: asyncio.AbstractEventLoop | None = None  # the server's, once a warm ran on it

    # -- aliases ---------------------------------------------------------------------

    def refresh(self) -> bool:
        """Re-read the aliases if an alias moved since the last call; True when they were.
        Moved aliases' targets are loaded in the background (on the event loop, also when
        this runs in the registry watch's thread). Raises RegistryError."""
        if self._loop is None:  # the server's first refresh runs on its event loop, later ones may not
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                pass
        registry, project = self._store.registry, self._store.project
        rolled = self._refresh_routes(registry, project)
        revision = registry.revision(project, "model_alias")
        if revision == self._revision:
            return rolled
        aliases = {(o.spec["model"], o.spec["alias"]): o.spec["version"]
                   for o in registry.list(project, "model_alias")}
        first = self._revision < 0
        for (model, alias), version in self._aliases.items():
            if aliases.get((model, alias)) != version:
                MODEL_INFO.labels(model, str(version), alias).set(0)
        moved = [key for key, version in aliases.items() if self._aliases.get(key) != version]
        for model, alias in moved:
            MODEL_INFO.labels(model, str(aliases[model, alias]), alias).set(1)
        self._aliases, self._revision = aliases, revision
        if not first:
            log.info("model aliases reloaded (registry revision %d)", revision)
        for model, alias in moved:
            if alias == self.default_alias or not first:  # at start only the default aliases
                self.warm(model, aliases[model, alias])
        return True

    def _refresh_routes(self, registry, project: str) -> bool:
        revision = registry.revision(project, "rollout")
        if revision == self._routes_revision:
            return False
        previous, self._routes = self._routes, routes(registry, project)
        self._routes_revision = revision
        for name in set(previous) - set(self._routes):
            ROLLOUT_WEIGHT.labels(name).set(0)
            ROLLOUT_FAILED_CHECKS.labels(name).set(0)
        for name, route in self._routes.items():
            ROLLOUT_WEIGHT.labels(name).set(route.weight)
            ROLLOUT_FAILED_CHECKS.labels(name).set(route.failed_checks)
            self.warm(name, route.candidate)
        return True

    def route(self, uri: ModelURI) -> Route | None:
        """The rollout splitting requests for ``uri``: only a request that names the model by
        an alias pointing at the rollout's stable version (its champion) is split; one naming
        a version is served that version."""
        found = self._routes.get(uri.name)
        if found is None or found.weight == 0 or uri.alias is None:
            return None
        return found if self._aliases.get((uri.name, uri.alias)) == found.stable else None

    def parse(self, text: str) -> ModelURI:
        """``name``, ``name@alias`` or ``name/3``; a bare name follows the default alias."""
        uri = self._parsed.get(text)
        if uri is None:
            uri = parse_uri(text)
            if uri.alias is not None and "@" not in text:
                uri = ModelURI(uri.name, alias=self.default_alias)
            self._parsed.put(text, uri)
        return uri

    def resolve(self, uri: ModelURI) -> tuple[str, int]:
        """(name, version number) of a parsed URI, from the alias map; the registry is asked
        only about what the map does not hold (it names what is wrong: 404)."""
        if uri.version is not None:
            return uri.name, uri.version
        number = self._aliases.get((uri.name, uri.alias))
        if number is None:
            number = self._store.models.get(uri).version  # NotFoundError with close matches
        return uri.name, number

    # -- loading ---------------------------------------------------------------------

    async def get(self, text: str | ModelURI) -> ServedModel:
        """The served version ``text`` names, loading it if needed (404, 422 or 503)."""
        uri = text if isinstance(text, ModelURI) else self.parse(text)
        key = self.resolve(uri)
        served = self._loaded.get(key)
        if served is not None:
            self._loaded.move_to_end(key)
            return served
        try:
            return await self._load(key)
        except HTTPError:  # it did not load: counted per request that asked for it
            PREDICTIONS.labels(key[0], str(key[1]), VARIANT, "load_failed").inc()
            raise

    def warm(self, name: str, number: int) -> None:
        """Load a version in the background (a failure is logged; requests retry it). Called
        from another thread (the registry watch's), it is handed to the event loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self.warm, name, number)
            return
        self._loop = loop
        if (name, number) in self._loaded or len(self._warming) >= self.size:
            return
        task = loop.create_task(self._warm((name, number)), name=f"warm {name}/{number}")
        self._warming.add(task)
        task.add_done_callback(self._warming.discard)

    async def _warm(self, key: tuple[str, int]) -> None:
        try:
            await self._load(key)
        except (FeatureStoreError, HTTPError) as exc:
            log.warning("could not load model %s/%d ahead of requests: %s", *key, exc)

    async def _load(self, key: tuple[str, int]) -> ServedModel:
        pending = self._loading.get(key)
        if pending is None:  # one load per version, however many requests wait for it
            pending = asyncio.get_running_loop().run_in_executor(None, self._load_blocking, key)
            self._loading[key] = pending
            pending.add_done_callback(lambda future: self._loaded_one(key, future))
        return await asyncio.shield(pending)  # a request that leaves does not stop the load

    def _loaded_one(self, key: tuple[str, int], future: asyncio.Future) -> None:
        """Keep a version that loaded (even if every request that asked has left since)."""
        del self._loading[key]
        if future.cancelled() or future.exception() is not None:  # retrieved: logged where raised
            return
        self._loaded[key] = future.result()
        if self.on_load is not None:
            self.on_load()
        while len(self._loaded) > self.size:
            evicted, gone = self._loaded.popitem(last=False)
            gone.inline_mode(0)
            log.info("model %s/%d evicted from this worker's cache (serving.model_cache_size %d)",
                     *evicted, self.size)

    def _load_blocking(self, key: tuple[str, int]) -> ServedModel:
        name, number = key
        try:
            loaded = self._store.models.load(f"{name}/{number}")
        except (NotFoundError, InputError, RegistryError):
            raise  # the request's fault (404, 422) or the registry's (503): answered as such
        except Exception as exc:  # any failure of the model's own code or files
            log.warning("model %s/%d cannot be loaded: %s: %s", name, number, type(exc).__name__, exc)
            raise HTTPError(503, "ModelUnavailable",
                            f"model {name}/{number} cannot be loaded ({type(exc).__name__}: {scrub(str(exc))}); "
                            "this server tries again on the next request") from None
        timeout = self.timeouts.get(name, self.timeout)
        served = ServedModel(loaded, timeout, InlineGate(self.inline_budgets.get(name, self.inline_budget), timeout))
        for stage in ("features", "transform", "model"):
            served.observe[stage] = metric_batches.histogram(PREDICTION_DURATION.labels(name, stage)).observe
        served.inline_mode = MODEL_INLINE.labels(name, str(number)).set
        served.inline_mode(0)
        log.info("model %s/%d loaded", name, number)
        return served

    def stop(self) -> None:
        for task in self._warming:
            task.cancel()
