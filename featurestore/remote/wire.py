"""The wire between ``RemoteFeatureStore`` and the Flight server (``serving/flight``).

One call per operation, a JSON command in the Flight descriptor or ticket, Arrow both ways:

- ``do_exchange`` (reads with an upload): ``get_historical_features``, ``predict``,
  ``get_online_features``, ``predict_online``. The client sends the entity rows as Arrow,
  the server streams the answer back as record batches on the same call (no state kept
  between calls, so any replica can answer).
- ``do_put`` (writes): ``push``, ``save_dataset``. The server answers with one JSON
  message as the put's metadata.
- ``do_get`` (reads without an upload): ``get_saved_dataset`` streams a saved dataset's rows.
- ``do_action`` (small JSON answers): ``list``, ``saved_dataset``, ``models``, ``ping``.

A command is ``{"op": <name>, ...}``; Feast's remote offline store sends ``{"api": ...}``
instead (``serving/flight/feast.py``). A failed call carries ``{"type", "message"}`` as
the Flight error's ``extra_info``, and the client raises the same ``FeatureStoreError``
subclass with the same message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from featurestore import errors

__all__ = ["API_KEY_HEADER", "EXCHANGE_OPS", "GET_OPS", "PUT_OPS", "ACTION_OPS", "WRITE_OPS", "decode_command",
           "encode_command", "error_info", "error_from_info", "rebatch"]

#: The header a client sends its API key in (``authorization: Bearer <key>`` works too).
API_KEY_HEADER = "x-api-key"

EXCHANGE_OPS = ("get_historical_features", "predict", "get_online_features", "predict_online")
PUT_OPS = ("push", "save_dataset")
GET_OPS = ("get_saved_dataset",)
ACTION_OPS = ("list", "saved_dataset", "models", "ping")
#: The operations that need a key whenever keys are configured (the rest: with ``auth_reads``).
WRITE_OPS = frozenset(PUT_OPS)


def encode_command(op: str, **fields: Any) -> bytes:
    return json.dumps({"op": op, **fields}, default=str).encode()


def decode_command(raw: bytes) -> dict[str, Any]:
    """The JSON object of a descriptor, ticket or action body; InputError when it is not one."""
    try:
        command = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise errors.InputError("the Flight command is not JSON; send {\"op\": ..., ...} as the descriptor's "
                                "command (RemoteFeatureStore does)") from None
    if not isinstance(command, dict):
        raise errors.InputError(f"the Flight command must be a JSON object, not {type(command).__name__}")
    return command


def error_info(kind: str, message: str) -> bytes:
    """What a failed call carries for the client to raise the same error (``kind``: its class name)."""
    return json.dumps({"type": kind, "message": message}).encode()


def error_from_info(info: bytes | None) -> errors.FeatureStoreError | None:
    """The error a server described in ``error_info``; None when the bytes are not one."""
    try:
        described = json.loads(info or b"")
        kind, message = described["type"], described["message"]
    except (ValueError, TypeError, KeyError, UnicodeDecodeError):
        return None
    cls = getattr(errors, kind, None) if kind in errors.__all__ else None
    if not (isinstance(cls, type) and issubclass(cls, errors.FeatureStoreError)):
        cls = errors.FeatureStoreError
    error = cls.__new__(cls)  # several subclasses build their message from parts; keep the server's text
    Exception.__init__(error, message)
    if isinstance(error, errors.StoreUnavailableError):
        error.store = "the feature store server"
    return error


def rebatch(reader: pa.RecordBatchReader, rows: int) -> Iterator[pa.RecordBatch]:
    """The reader's batches cut (zero-copy) to at most ``rows`` rows: a client sees the first
    rows early, and a server notices a client that left between two batches."""
    for batch in reader:
        for start in range(0, batch.num_rows, rows):
            yield batch.slice(start, rows)
