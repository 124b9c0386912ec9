"""``ModelProcess``: model versions called in a process of their own.

A model's call holds the interpreter's lock for most of its time (scikit-learn validates
its input in Python), so a model called on a thread of a server's process delays that
process's requests by as long. Called here, it runs beside them: the server's process
only sends the input table down a pipe (an Arrow IPC stream, tens of microseconds) and
reads the predictions back.

The process is started (``spawn``: the server's threads are not copied into it) on the
first call. It opens the store with the callable it was given (``partial(FeatureStore,
config=...)``: the server's settings), loads each version it is asked for by its URI
from the registry (as the server did) and keeps the last few loaded. A
process that died (a model that crashed it) fails the call in flight and is started
anew on the next one.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from featurestore.errors import FeatureStoreError

__all__ = ["ModelCallFailed", "ModelProcess"]

#: Versions the process keeps loaded (a rollout has one candidate per model).
KEPT = 4


class ModelCallFailed(FeatureStoreError):
    """The model raised on the rows (``loaded``), or could not be loaded or called at all."""

    def __init__(self, message: str, *, loaded: bool):
        super().__init__(message)
        self.loaded = loaded


class ModelProcess:
    """One process calling model versions for the caller; calls are made one at a time."""

    def __init__(self, open_store: Callable[[], Any]):
        """``open_store``: builds the store in the process (picklable; a context manager
        whose ``models.load(uri)`` loads a version)."""
        self._open_store = open_store
        self._process = None
        self._conn = None
        self._lock = threading.Lock()

    def predict(self, uri: str, table: pa.Table) -> tuple[list, float]:
        """The predictions of version ``uri`` (``name/3``) on ``table`` (in its signature's
        order and types) and the seconds its call took; ModelCallFailed when it raised,
        could not be loaded, or the process died meanwhile."""
        with self._lock:
            if self._process is None or not self._process.is_alive():
                self._start()
            try:
                self._conn.send(uri)
                self._conn.send_bytes(_stream(table))
                outcome, answer, seconds = self._conn.recv()
            except (EOFError, OSError) as exc:
                self._stop()
                raise ModelCallFailed(f"the model process died while calling {uri} ({type(exc).__name__})",
                                      loaded=False) from None
        if outcome != "ok":
            raise ModelCallFailed(answer, loaded=outcome == "model_error")
        return answer, seconds

    def close(self) -> None:
        """Ask the process to exit once its call in flight is answered."""
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.send(None)
                except OSError:
                    pass
            self._stop(wait=True)

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, theirs = context.Pipe()
        self._process = context.Process(target=_serve, args=(theirs, self._open_store), daemon=True,
                                        name="featurestore-model-process")
        self._process.start()
        theirs.close()

    def _stop(self, wait: bool = False) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._process is not None:
            self._process.join(5 if wait else 0)
            if self._process.is_alive():
                self._process.kill()
        self._process = self._conn = None


def _stream(table: pa.Table) -> pa.Buffer:
    """``table`` as an Arrow IPC stream: a fifth of pickling's cost, and the cost is the
    caller's interpreter lock."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _serve(conn, open_store: Callable[[], Any]) -> None:
    """The process's loop: a URI and an Arrow IPC stream of the rows in, ``(outcome,
    predictions or message, seconds)`` out, until ``None`` or the caller's end of the pipe
    closes."""
    loaded: OrderedDict = OrderedDict()
    with open_store() as store:
        while True:
            try:
                asked = conn.recv()
            except EOFError:
                return
            if asked is None:
                return
            uri, table = asked, pa.ipc.open_stream(conn.recv_bytes()).read_all()
            model = loaded.get(uri)
            if model is None:
                try:
                    model = loaded[uri] = store.models.load(uri)
                except Exception as exc:  # the model's files or code; the caller counts it
                    conn.send(("load_error", f"model {uri} cannot be loaded: {type(exc).__name__}: {exc}", 0.0))
                    continue
                while len(loaded) > KEPT:
                    loaded.popitem(last=False)
            loaded.move_to_end(uri)
            began = time.perf_counter()
            try:
                predictions = model.predictor.predict(table)
            except Exception as exc:
                conn.send(("model_error", f"{type(exc).__name__}: {exc}", time.perf_counter() - began))
                continue
            took = time.perf_counter() - began
            try:
                conn.send(("ok", predictions, took))
            except Exception as exc:  # predictions that cannot be pickled
                conn.send(("model_error", f"its answer cannot be sent back: {type(exc).__name__}: {exc}", took))
