"""``ModelProcess``: model versions called in a process of their own.

A model's call holds the interpreter's lock for most of its time (scikit-learn validates
its input in Python), so a model called on a thread of a server's process delays that
process's requests by as long. Called here, it runs beside them: the caller only sends
the input table down a pipe (an Arrow IPC stream, tens of microseconds) and reads the
predictions back.

The process (``featurestore.child_process``: ``spawn``) is started on the first call. It
opens the store with the callable it was given (``partial(FeatureStore, config=...)``:
the server's settings), loads each version it is asked for by its URI from the registry
(as the server did) and keeps the last few loaded. A process that died (a model that
crashed it) fails the call in flight and is started anew on the next one; so does one
whose model call outlasted the call's ``deadline``: it is killed, since a hung call
cannot be interrupted otherwise. Starting the process and loading a version are given
``LOAD_SECONDS`` apart from the deadline.

A call is one message each way: the URI and the rows in one, the answer in the other. A
process that has to load the version first says when the model's call begins (the
deadline runs from then); for a version the caller knows loaded there, it runs from the
send. Every message wakes a process on a machine whose cores the server's requests need.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from featurestore.child_process import ChildGone, ChildProcess, messages
from featurestore.errors import FeatureStoreError

__all__ = ["LOAD_SECONDS", "ModelCallFailed", "ModelProcess"]

#: Versions the process keeps loaded (a rollout has one candidate per model).
KEPT = 4
#: Seconds starting the process and loading a version may take before it is given up on.
LOAD_SECONDS = 300.0
#: What the process sends when the model's call begins (the deadline runs from then).
_CALLING = "calling"


class ModelCallFailed(FeatureStoreError):
    """The model raised on the rows (``loaded``), or could not be loaded or called at all
    (``late``: its call outlasted the deadline and the process was stopped)."""

    def __init__(self, message: str, *, loaded: bool, late: bool = False):
        super().__init__(message)
        self.loaded, self.late = loaded, late


class ModelProcess:
    """One process calling model versions for the caller; calls are made one at a time."""

    def __init__(self, open_store: Callable[[], Any]):
        """``open_store``: builds the store in the process (picklable; a context manager
        whose ``models.load(uri)`` loads a version)."""
        self._child = ChildProcess(_serve, (open_store,), name="featurestore-model-process")
        self._lock = threading.Lock()
        # The versions loaded in the running process, as it keeps them (the same KEPT, in
        # the same order), and its id: a new process has none loaded.
        self._loaded: OrderedDict[str, None] = OrderedDict()
        self._loaded_in: int | None = None

    @property
    def pid(self) -> int | None:
        """The process's id while one runs."""
        return self._child.pid

    def predict(self, uri: str, table: pa.Table, deadline: float | None = None) -> tuple[list, float]:
        """The predictions of version ``uri`` (``name/3``) on ``table`` (in its signature's
        order and types) and the seconds its call took; ModelCallFailed when it raised,
        could not be loaded, the process died meanwhile, or the call took longer than
        ``deadline`` seconds (then the process is stopped; None: no limit)."""
        with self._lock:
            answer = None
            loaded = self._child.pid is not None and self._child.pid == self._loaded_in and uri in self._loaded
            try:
                self._child.send((uri, _stream(table)))
                answer = self._child.receive(deadline if loaded else LOAD_SECONDS)
                if answer == _CALLING:
                    answer = self._child.receive(deadline)
            except ChildGone as exc:
                what = (f"the model process was stopped: {uri} did not answer within {deadline:g} s" if exc.late
                        and (loaded or answer == _CALLING) else f"the model process died while calling {uri} ({exc})")
                raise ModelCallFailed(what, loaded=False, late=exc.late) from None
            outcome, answer, seconds = answer
            if outcome != "load_error":
                self._loading(uri)
        if outcome != "ok":
            raise ModelCallFailed(answer, loaded=outcome == "model_error")
        return answer, seconds

    def close(self) -> None:
        """Ask the process to exit once its call in flight is answered."""
        with self._lock:
            self._child.close()

    def _loading(self, uri: str) -> None:
        """``uri`` loaded in the running process: kept as ``_serve`` keeps it."""
        if self._loaded_in != self._child.pid:
            self._loaded.clear()
            self._loaded_in = self._child.pid
        self._loaded[uri] = None
        self._loaded.move_to_end(uri)
        while len(self._loaded) > KEPT:
            self._loaded.popitem(last=False)


def _stream(table: pa.Table) -> bytes:
    """``table`` as an Arrow IPC stream: a fifth of pickling's cost, and the cost is the
    caller's interpreter lock."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _serve(conn, open_store: Callable[[], Any]) -> None:
    """The process's loop: a URI and an Arrow IPC stream of the rows in, one message
    (``_CALLING`` out first when the version had to be loaded), ``(outcome, predictions or
    message, seconds)`` out, until ``None`` or the caller's end of the pipe closes."""
    loaded: OrderedDict = OrderedDict()
    with open_store() as store:
        for uri, stream in messages(conn):
            table = pa.ipc.open_stream(stream).read_all()
            model = loaded.get(uri)
            if model is None:
                try:
                    model = loaded[uri] = store.models.load(uri)
                except Exception as exc:  # the model's files or code; the caller counts it
                    conn.send(("load_error", f"model {uri} cannot be loaded: {type(exc).__name__}: {exc}", 0.0))
                    continue
                while len(loaded) > KEPT:
                    loaded.popitem(last=False)
                conn.send(_CALLING)  # the load is over: the caller's deadline runs from here
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
