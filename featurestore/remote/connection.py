"""One Flight connection to a featurestore server, with its key and its errors mapped.

Every call sends the API key (``x-api-key``) and turns the server's Flight errors back
into the ``FeatureStoreError`` it described (``wire.error_from_info``); a refused key is
an ``AuthError``, a server that cannot be reached a ``StoreUnavailableError`` naming the URL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight

from featurestore.errors import AuthError, FeatureStoreError, StoreUnavailableError
from featurestore.remote.wire import API_KEY_HEADER, encode_command, error_from_info

__all__ = ["Connection", "flight_url"]


def flight_url(url: str) -> str:
    """``grpc://``, ``grpc+tcp://`` or ``grpc+tls://`` URLs as they are; ``host:port`` as ``grpc+tcp://host:port``."""
    if "://" not in url:
        return f"grpc+tcp://{url}"
    scheme = url.split("://", 1)[0]
    if scheme not in ("grpc", "grpc+tcp", "grpc+tls"):
        raise FeatureStoreError(f"{url!r} is not a Flight URL: use grpc://host:port (or grpc+tls://host:port "
                                "for a server with TLS); the HTTP API's URL is another port")
    return url


class Connection:
    def __init__(self, url: str, api_key: str | None = None, *, tls_root_certs: str | Path | bytes | None = None,
                 timeout: float | None = None, grpc_options: Sequence[tuple[str, Any]] = ()):
        self.url = flight_url(url)
        certs = Path(tls_root_certs).read_bytes() if isinstance(tls_root_certs, (str, Path)) else tls_root_certs
        self._client = flight.FlightClient(self.url, generic_options=list(grpc_options),
                                           **({"tls_root_certs": certs} if certs else {}))
        headers = [(API_KEY_HEADER.encode(), api_key.encode())] if api_key else []
        self._options = flight.FlightCallOptions(headers=headers, timeout=timeout)

    @contextmanager
    def mapped(self) -> Iterator[None]:
        """Flight errors as the FeatureStoreErrors the server described."""
        try:
            yield
        except flight.FlightUnauthenticatedError as exc:
            raise AuthError(_message(exc)) from None
        except flight.FlightUnauthorizedError as exc:
            raise AuthError(_message(exc)) from None
        except flight.FlightError as exc:
            described = error_from_info(getattr(exc, "extra_info", None))
            if described is not None:
                raise described from None
            if isinstance(exc, flight.FlightUnavailableError):
                raise StoreUnavailableError(f"the feature store server at {self.url} cannot be reached "
                                            f"({_message(exc)}); check the URL and that the server runs",
                                            store="the feature store server") from None
            raise FeatureStoreError(f"the feature store server at {self.url} failed: {_message(exc)}") from None

    def exchange(self, op: str, upload: pa.Table, **fields: Any) -> pa.RecordBatchReader:
        """Send ``upload``, then read the answer as it streams (the call ends with the reader)."""
        descriptor = flight.FlightDescriptor.for_command(encode_command(op, **fields))
        with self.mapped():
            writer, reader = self._client.do_exchange(descriptor, self._options)
            with _closed_on_error(writer):
                writer.begin(upload.schema)
                writer.write_table(upload)
                writer.done_writing()
                try:
                    first = reader.read_chunk()  # the server's error, if any, arrives here
                except StopIteration:  # no rows at all
                    writer.close()
                    return pa.RecordBatchReader.from_batches(reader.schema, iter(()))
        return pa.RecordBatchReader.from_batches(reader.schema, self._rest(first.data, writer, reader))

    def _rest(self, first: pa.RecordBatch | None, writer, reader) -> Iterator[pa.RecordBatch]:
        # The writer lives as long as the reader: closing an exchange's writer waits for the
        # call to end, reading (and dropping) whatever the server still sends.
        done = False
        try:
            if first is not None:
                yield first
            while True:
                with self.mapped():
                    try:
                        chunk = reader.read_chunk()
                    except StopIteration:
                        done = True
                        return
                if chunk.data is not None:
                    yield chunk.data
        finally:
            if not done:  # the caller stopped reading early: tell the server to stop sending
                reader.cancel()
            try:
                writer.close()
            except flight.FlightError:  # the cancellation, or the error already raised
                pass

    def put(self, op: str, upload: pa.Table, **fields: Any) -> Any:
        """Send ``upload``; the server's JSON answer."""
        descriptor = flight.FlightDescriptor.for_command(encode_command(op, **fields))
        with self.mapped():
            writer, answers = self._client.do_put(descriptor, upload.schema, self._options)
            with _closed_on_error(writer):
                writer.write_table(upload)
                writer.done_writing()
                answer = answers.read()
                writer.close()
        return json.loads(answer.to_pybytes()) if answer is not None else None

    def get(self, op: str, **fields: Any) -> pa.Table:
        with self.mapped():
            return self._client.do_get(flight.Ticket(encode_command(op, **fields)), self._options).read_all()

    def action(self, op: str, **fields: Any) -> Any:
        with self.mapped():
            results = list(self._client.do_action(flight.Action(op, encode_command(op, **fields)), self._options))
        return json.loads(results[0].body.to_pybytes()) if results else None

    def close(self) -> None:
        self._client.close()


@contextmanager
def _closed_on_error(writer) -> Iterator[None]:
    """Close a failed call's stream here, so its destructor does not print the error again."""
    try:
        yield
    except BaseException:
        try:
            writer.close()
        except Exception:  # the same error, already on its way up
            pass
        raise


def _message(exc: Exception) -> str:
    """The server's text without gRPC's debug context."""
    return str(exc).split(". Detail:")[0].split(". gRPC client debug context")[0]
