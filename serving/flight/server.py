"""The Arrow Flight server: training sets, saved datasets, scoring and online reads over gRPC.

``FeatureFlightServer(store, settings)`` serves one store. It speaks two dialects on the
same port: ours (``{"op": ...}`` commands, ``featurestore/remote/wire.py``, used by
``FeatureStore.remote``) and Feast's remote offline store (``{"api": ...}``, ``feast.py``).

- Results stream: a training set is sent as the engine's reader yields it, cut into
  batches of ``flight.batch_rows``, so the server holds no second copy and a client
  that leaves is noticed between two batches; its slot is released at once.
- Retrievals and batch scorings hold an engine slot (``slots.py``) from before the join
  until the last batch is sent.
- Keys as on the HTTP server (``auth.py``); TLS when ``flight.tls_cert`` is set.
- Errors: a ``FeatureStoreError`` becomes a Flight error whose ``extra_info`` holds its
  type and message (the client raises the same error); a 5xx-kind message (a store that
  is down) names no path or host unless the caller sent a valid key, as over HTTP;
  anything else is logged with its traceback and answered "internal error".
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.flight as flight

from featurestore.errors import BusyError, FeatureStoreError, InputError, StoreUnavailableError
from featurestore.remote.wire import (ACTION_OPS, EXCHANGE_OPS, GET_OPS, PUT_OPS, WRITE_OPS, decode_command, error_info,
                                      rebatch)
from featurestore.store import FeatureStore
from serving.auth import APIKeyAuth
from serving.disclosure import public_message
from serving.errors import status_for
from serving.flight import feast, operations
from serving.flight.auth import MIDDLEWARE, KeyMiddlewareFactory, require_key
from serving.flight.settings import FlightSettings
from serving.flight.slots import EngineSlots
from serving.flight.uploads import read_upload, timestamp_column

__all__ = ["FeatureFlightServer"]

log = logging.getLogger("featurestore.flight")


class FeatureFlightServer(flight.FlightServerBase):
    def __init__(self, store: FeatureStore, settings: FlightSettings = FlightSettings(), *,
                 auth: APIKeyAuth | None = None):
        serving = store.config.serving
        self.store, self.settings = store, settings
        self.auth = auth or APIKeyAuth(serving.api_keys, serving.auth_reads)
        self.slots = EngineSlots(settings.slots, settings.slot_timeout)
        self._refresh_lock = threading.Lock()
        tls = [(settings.tls_cert.read_bytes(), settings.tls_key.read_bytes())] if settings.tls else []
        super().__init__(f"{settings.scheme}://{settings.host}:{settings.port}", tls_certificates=tls,
                         middleware={MIDDLEWARE: KeyMiddlewareFactory(self.auth)})

    @property
    def url(self) -> str:
        """Where a client connects: ``grpc+tcp://host:port`` (the bound port when port 0 was asked)."""
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "::", "") else self.settings.host
        return f"{self.settings.scheme}://{host}:{self.port}"

    # -- the four Flight calls -----------------------------------------------------------

    def do_exchange(self, context, descriptor, reader, writer):
        with self._answering(context, "exchange"):
            command = decode_command(descriptor.command)
            if "api" in command:
                return feast.exchange(self, context, command, reader, writer)
            op = _op(command, EXCHANGE_OPS, "do_exchange")
            require_key(context, self.auth, write=False)
            entities = read_upload(reader, self.settings.max_upload_bytes)
            if op in ("get_historical_features", "predict") and not command.get("entity_sql"):
                timestamp_column(entities, str(command.get("timestamp_field") or "event_timestamp"))
            self.refresh_definitions()
            if op == "get_historical_features":
                with self.slots.hold("get_historical_features"):
                    job = operations.historical_job(self.store, command, entities)
                    self.send(context, writer, job.to_reader())
            elif op == "predict":
                with self.slots.hold("predict"):
                    self.send(context, writer, operations.predict_batch(self.store, command, entities).to_reader())
            else:
                online = operations.online_features if op == "get_online_features" else operations.predict_online
                self.send(context, writer, online(self.store, command, entities).to_reader())

    def do_put(self, context, descriptor, reader, writer):
        with self._answering(context, "put"):
            command = decode_command(descriptor.command)
            if "api" in command:
                return feast.put(self, context, command, reader)
            op = _op(command, PUT_OPS, "do_put")
            require_key(context, self.auth, write=op in WRITE_OPS)
            rows = read_upload(reader, self.settings.max_upload_bytes, "the uploaded rows")
            self.refresh_definitions()
            if op == "save_dataset":
                with self.slots.hold("save_dataset"):
                    answer = operations.save_dataset(self.store, command, rows)
            else:
                answer = operations.push(self.store, command, rows)
            writer.write(pa.py_buffer(json.dumps(answer, default=str).encode()))

    def do_get(self, context, ticket):
        with self._answering(context, "get"):
            command = decode_command(ticket.ticket)
            _op(command, GET_OPS, "do_get")
            require_key(context, self.auth, write=False)
            self.refresh_definitions()
            table = operations.saved_dataset_rows(self.store, command)
            return flight.GeneratorStream(table.schema, rebatch(table.to_reader(), self.settings.batch_rows))

    def do_action(self, context, action):
        with self._answering(context, "action"):
            command = decode_command(action.body.to_pybytes() if action.body is not None else b"")
            command.setdefault("op", action.type)
            _op(command, ACTION_OPS, "do_action")
            require_key(context, self.auth, write=False)
            self.refresh_definitions()
            answer = operations.action(self.store, command)
            return iter([flight.Result(pa.py_buffer(json.dumps(answer, default=str).encode()))])

    def list_actions(self, context):
        return [(op, f"featurestore: {op} (JSON body {{...}}, JSON answer)") for op in ACTION_OPS]

    # -- shared --------------------------------------------------------------------------

    def send(self, context, writer, reader: pa.RecordBatchReader) -> int:
        """Stream ``reader`` to the client; stops quietly when the client has gone. Returns the rows sent."""
        writer.begin(reader.schema)
        sent = 0
        try:
            for batch in rebatch(reader, self.settings.batch_rows):
                if context.is_cancelled():
                    break
                writer.write_batch(batch)
                sent += batch.num_rows
        except flight.FlightError:
            if not context.is_cancelled():
                raise
        finally:
            reader.close()
        if context.is_cancelled():
            log.info("the client left after %d rows; its work stopped", sent)
        log.debug("sent %d rows", sent)
        return sent

    def refresh_definitions(self) -> None:
        """Serve what the registry holds now: a new apply is seen by the next call."""
        with self._refresh_lock:
            self.store.refresh()

    @contextmanager
    def _answering(self, context, call: str) -> Iterator[None]:
        """Every FeatureStoreError as a Flight error the client can rebuild; anything else
        logged and answered as an internal error (no traceback leaves the server)."""
        try:
            yield
        except flight.FlightError:
            raise
        except FeatureStoreError as exc:
            raise _flight_error(exc, self._trusted(context)) from None
        except Exception:
            if context.is_cancelled():
                log.info("%s: the client left", call)
                return
            log.exception("Flight %s failed", call)
            raise flight.FlightInternalError("internal error; the server log has the details") from None

    def _trusted(self, context) -> bool:
        seen = context.get_middleware(MIDDLEWARE)
        return seen is not None and seen.valid


def _flight_error(exc: FeatureStoreError, trusted: bool) -> flight.FlightError:
    status = status_for(exc)
    message = str(exc)
    if status >= 500:
        log.warning("%s: %s", type(exc).__name__, exc)
        if not trusted and not isinstance(exc, BusyError):
            message = public_message(exc)
    info = error_info(type(exc).__name__, message)
    kind: Callable[..., flight.FlightError] = (flight.FlightUnavailableError if isinstance(exc, StoreUnavailableError)
                                               else flight.FlightServerError)
    return kind(f"{type(exc).__name__}: {message}", extra_info=info)


def _op(command: dict, known: tuple[str, ...], call: str) -> str:
    op = command.get("op")
    if op not in known:
        raise InputError(f"{call} does not take op {op!r}; it takes {', '.join(known)}")
    return op
