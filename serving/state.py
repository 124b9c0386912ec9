"""What a server process holds: the store, its limits and keys, and two background tasks.

- **Registry watch.** Every ``watch_interval`` seconds the server reads the revision of
  the definitions in the registry (one indexed SQLite read) and, when an apply changed
  them, reloads them, so new views and services are served without a restart; other
  kinds (saved datasets) do not move it. It runs in a worker thread (a registry on a
  database server may take its connect timeout to fail); the new definitions are swapped
  in one step and the read plans built from the old ones are dropped with their cache
  (``OnlineReader.plan``), so a request sees one set of definitions or the other.
- **Online reads never hold up the server.** A store across a network (Redis: it offers
  ``AsyncReads``) is read on the event loop without blocking it, within
  ``online_store.read_timeout`` (a thread hop would cost more than the round trip);
  plans with aggregation views read their events with the blocking client, so they run
  in a worker thread, within the same deadline. An embedded store (SQLite: a local file)
  is read inline. ``/health`` waits on nothing; ``/ready`` pings the store within the
  deadline.
- **Online store breaker.** When the store fails or misses the deadline, the failing
  request and every read after it answer 503 at once, without touching the network,
  while a probe pings the store every ``probe_interval`` seconds; the first successful
  ping closes the breaker. So an outage costs one slow request (at most the deadline),
  not one per request, and the server recovers by itself.
- **Models** (``/predict``, ``/v2``): ``models`` loads and keeps versions and follows
  their aliases (``serving.model_cache``; the registry watch refreshes the aliases each
  tick), ``runner`` calls them off the event loop within their timeout
  (``serving.model_runner``), and every finished prediction is handed to the callables
  in ``prediction_sinks`` (``serving.finished``); a shadow rollout's candidate is scored
  on the logged rows by the serving log's process (``featurestore/serving_log/shadow.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from featurestore.errors import FeatureStoreError, StoreUnavailableError
from featurestore.online.base import AsyncReads, OnlineRow, OnlineStore, OnlineView
from featurestore.online.read import OnlineResponse, ReadPlan, read_online, read_online_async
from featurestore.store import FeatureStore
from monitoring import metric_batches
from monitoring.metrics import ONLINE_READ_DURATION, REGISTRY_RELOADS
from serving.auth import APIKeyAuth
from serving.serving_log import ServingLog
from serving.model_cache import ModelCache
from serving.model_runner import ModelRunner

__all__ = ["ServingState", "TimedOnlineStore", "get_state"]

log = logging.getLogger("featurestore.serving")


class TimedOnlineStore:
    """The online store with each ``read`` round trip recorded in a histogram."""

    __slots__ = ("store", "_observe")

    def __init__(self, store: OnlineStore, store_type: str):
        self.store = store
        self._observe = metric_batches.histogram(ONLINE_READ_DURATION.labels(store_type)).observe

    def read(self, requests: Sequence[tuple[OnlineView, Sequence[str], Sequence[tuple]]]) -> list[list[OnlineRow]]:
        began = time.perf_counter()
        try:
            return self.store.read(requests)
        finally:
            self._observe(time.perf_counter() - began)

    async def read_async(self, requests: Sequence[tuple[OnlineView, Sequence[str], Sequence[tuple]]]
                         ) -> list[list[OnlineRow]]:
        began = time.perf_counter()
        try:
            return await self.store.read_async(requests)
        finally:
            self._observe(time.perf_counter() - began)


class ServingState:
    def __init__(
        self,
        store: FeatureStore,
        auth: APIKeyAuth,
        *,
        max_entities: int,
        max_body_bytes: int,
        max_features: int = 1000,
        body_timeout: float = 10.0,
        watch_interval: float = 1.0,
        probe_interval: float = 0.5,
        models: ModelCache | None = None,
    ):
        self.store = store
        self.auth = auth
        self.max_entities = max_entities
        self.max_features = max_features
        self.body_timeout = body_timeout
        self.max_body_bytes = max_body_bytes
        self.watch_interval = watch_interval
        self.probe_interval = probe_interval
        self.store_type = store.config.online_store.type
        self.online = TimedOnlineStore(store.online, self.store_type)  # connects on first use
        self._async: AsyncReads | None = store.online if isinstance(store.online, AsyncReads) else None
        self.read_timeout = store.config.online_store.read_timeout
        self.serving_log = ServingLog(store, own_process=True)  # its thread and process start with the first row
        self.revision = -1
        self.registry_error: str | None = "the registry has not been loaded yet"
        self.online_down: str | None = None  # the reason, while the breaker is open
        self._registry_failing = False
        self._tasks: list[asyncio.Task] = []
        self._probe: asyncio.Task | None = None
        self.models = models or ModelCache(store)
        self.runner = ModelRunner()
        # Callables taking each serving.finished.FinishedPrediction: the serving log's first.
        self.prediction_sinks: list = [self._log_prediction]

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self.check_registry()
        self.check_models()  # and load every model's default alias in the background
        if not self.auth.writes:
            log.warning("no API keys configured (serving.api_keys / FEATURESTORE_API_KEYS): "
                        "/push and /materialize are open to anyone who can reach this server")
        if self.watch_interval > 0:
            self._tasks.append(asyncio.create_task(self._watch(), name="featurestore-registry-watch"))

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._probe] if self._probe else [])]
        for task in tasks:
            task.cancel()
        self.models.stop()
        self.runner.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks, self._probe = [], None
        self.serving_log.close()
        if self._async is not None:
            await self._async.aclose()

    def _log_prediction(self, finished) -> None:
        self.serving_log.log_prediction(
            finished.model, finished.version, finished.plan.join_keys, finished.features, finished.entities,
            finished.predictions, finished.request_id, variant=finished.variant, served_at=finished.served_at,
            status=finished.status, latency_ms=finished.latency_ms, sampled=finished.sampled, shadow=finished.shadow,
            before_model_ms=finished.before_model_ms)

    # -- online reads ------------------------------------------------------------------

    async def read(self, features, entities, full_feature_names: bool) -> tuple[ReadPlan, OnlineResponse]:
        """The plan of the feature list and the newest values per entity; 503 (raised as
        StoreUnavailableError) at once while the breaker is open, or when the store fails or
        misses the deadline."""
        if self.online_down is not None:
            raise StoreUnavailableError(self.online_down)
        reader = self.store.online_reader
        plan = reader.plan(features, full_feature_names)
        try:
            if self._async is None:
                return plan, read_online(self.online, plan, entities, reader.clock)
            if not plan.aggregates:
                return plan, await read_online_async(self.online, plan, entities, reader.clock)
            return plan, await self._in_thread(read_online, self.online, plan, entities, reader.clock)
        except StoreUnavailableError as exc:
            self.store_failed(exc)
            raise

    async def _in_thread(self, function, *args):
        """``function(*args)`` in a worker thread, waited for up to the read timeout (the
        thread is left to finish by itself: a blocking call cannot be interrupted)."""
        future = asyncio.get_running_loop().run_in_executor(None, function, *args)
        try:
            return await asyncio.wait_for(future, self.read_timeout)
        except TimeoutError:
            raise StoreUnavailableError(
                f"the online store did not answer within {self.read_timeout:g} s (online_store.read_timeout)"
            ) from None

    # -- registry ----------------------------------------------------------------------

    def check_registry(self) -> bool:
        """Reload the definitions if an apply changed them; True when it did. A registry
        that cannot be read keeps the definitions loaded before (and is logged once)."""
        try:
            revision = self.store.definitions_revision()
            changed = revision != self.revision
            if changed:
                self.store.refresh()
                if self.revision >= 0:
                    REGISTRY_RELOADS.inc()
                    log.info("registry revision %d loaded (was %d)", revision, self.revision)
                self.revision = revision
        except Exception as exc:  # an unreadable registry (RegistryError) or definitions that no longer load
            if not self._registry_failing:
                log.warning("cannot read the registry: %s", exc)
            self._registry_failing = True
            if self.revision < 0:
                self.registry_error = f"cannot read the registry: {exc}"
            return False
        if self._registry_failing:
            log.warning("the registry is readable again")
        self._registry_failing = False
        self.registry_error = None
        return changed

    def check_models(self) -> bool:
        """Re-read the model aliases if one moved; True when they were. An unreadable
        registry keeps the aliases read before (check_registry logs it)."""
        try:
            return self.models.refresh()
        except Exception as exc:  # RegistryError, or a registry that no longer opens
            if not self._registry_failing:
                log.warning("cannot read the model aliases: %s", exc)
            return False

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.watch_interval)
            # In a thread: a registry on a database server that stopped answering takes up
            # to its connect timeout to say so, and the event loop must keep serving meanwhile.
            await asyncio.to_thread(self._check_registry_and_models)

    def _check_registry_and_models(self) -> None:
        self.check_registry()
        self.check_models()

    # -- online store breaker -------------------------------------------------------------

    def store_failed(self, exc: StoreUnavailableError) -> None:
        """Open the breaker after a failed read and start probing for the store's return."""
        if self.online_down is None:
            log.warning("online store unavailable, answering 503 until it is back: %s", exc)
        self.online_down = str(exc)
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._probe_until_back(), name="featurestore-probe")

    async def _probe_until_back(self) -> None:
        while self.online_down is not None:
            await asyncio.sleep(self.probe_interval)
            if await self.health_check() is None:
                return

    async def health_check(self) -> str | None:
        """Ping the online store (within the read timeout, or in a worker thread for an
        embedded one); None when it answers, else the reason. A success also closes the breaker."""
        try:
            if self._async is not None:
                await self._async.health_async()
            else:
                await run_in_threadpool(self.store.online.health)
        except FeatureStoreError as exc:
            return str(exc)
        if self.online_down is not None:
            log.warning("online store is back; serving reads again")
            self.online_down = None
        return None


async def get_state(request: Request) -> ServingState:
    """Dependency: the serving state of the app handling the request (tests may override it)."""
    return request.app.state.serving
