"""``RemoteFeatureStore``: a ``FeatureStore`` on a server, reached over Arrow Flight.

``FeatureStore.remote("grpc://host:8815", api_key=...)`` opens one. Its methods have the
local store's names, arguments and return types, so a notebook switches between a local
repo and a shared server by changing only how it opens the store (docs/remote.md):

- ``get_historical_features`` returns a lazy job (``to_arrow``/``to_pandas``/``to_df``/
  ``to_polars``/``to_reader``/``save``); the entity set (a pandas/polars frame, Arrow
  table or a Parquet file on this machine) is uploaded, a SQL string runs on the server;
- ``get_online_features`` returns an ``OnlineResponse``, ``predict_online`` a
  ``Prediction``, ``predict`` a pyarrow Table, ``push`` a ``PushResult``; online reads go
  over the same Flight connection (one URL and one key for everything);
- ``list_*``/``get_*`` return the definitions as the server's registry holds them;
  ``get_saved_dataset`` a dataset version whose ``to_arrow`` fetches its rows; ``models``
  the model registry's records (read-only).

What needs the repo's files (apply, materialize, the model registry's writes) runs on the
server. Errors are the server's ``FeatureStoreError`` subclasses, with its messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa

from featurestore.datasets import SavedDataset
from featurestore.definitions import FeatureService
from featurestore.errors import InputError
from featurestore.feast_args import retrieval_args
from featurestore.lookups import DefinitionLookups
from featurestore.models.predict import Prediction
from featurestore.online.read import OnlineResponse
from featurestore.push import PushResult, rows_to_arrow
from featurestore.remote.answers import online_from_arrow, prediction_from_arrow
from featurestore.remote.connection import Connection
from featurestore.remote.models import RemoteModels
from featurestore.remote.results import RemoteRetrievalJob, RemoteSavedDataset
from featurestore.repo import RepoContents
from featurestore.retrieval import to_arrow_table
from featurestore.serialization import contents_from_registry

__all__ = ["RemoteFeatureStore"]


class RemoteFeatureStore(DefinitionLookups):
    """A feature store served by ``featurestore serve --flight-port`` (or ``featurestore flight``)."""

    def __init__(self, url: str, api_key: str | None = None, *, tls_root_certs: str | Path | bytes | None = None,
                 timeout: float | None = None, grpc_options: Sequence[tuple[str, Any]] = ()):
        """``url``: ``grpc://host:port`` (``grpc+tls://`` when the server has a certificate;
        ``tls_root_certs`` names the CA file when it is self-signed). ``timeout``: seconds per
        call. ``grpc_options``: gRPC channel arguments, e.g. ``[("grpc.http2.bdp_probe", 0)]``
        to keep the receive window small (the server then sends only as fast as you read)."""
        self._connection = Connection(url, api_key, tls_root_certs=tls_root_certs, timeout=timeout,
                                      grpc_options=grpc_options)
        self.url = self._connection.url

    @cached_property
    def project(self) -> str:
        return self._connection.action("ping")["project"]

    # -- training sets -----------------------------------------------------------------

    def get_historical_features(
        self,
        entity_df: Any = None,
        features: Sequence[str] | FeatureService | str = (),
        full_feature_names: bool = False,
        *,
        timestamp_field: str = "event_timestamp",
        known_at_timestamp: bool = False,
        filter_by_created_timestamp: bool = False,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
    ) -> RemoteRetrievalJob:
        """The server's point-in-time join of ``features`` onto ``entity_df`` (run when read)."""
        known_at_timestamp = retrieval_args(entity_df, known_at_timestamp,
                                            filter_by_created_timestamp=filter_by_created_timestamp,
                                            start_date=start_date, end_date=end_date)
        command = {**_features(features), "full_feature_names": bool(full_feature_names),
                   "timestamp_field": timestamp_field, "known_at_timestamp": known_at_timestamp}
        if isinstance(entity_df, str) and not entity_df.strip().lower().endswith(".parquet"):
            command["entity_sql"] = entity_df  # runs over the server's offline store
            entities = pa.table({})
        else:
            entities = to_arrow_table(entity_df, None)
        return RemoteRetrievalJob(self._connection, entities, command)

    def get_saved_dataset(self, name: str, version: int | None = None) -> SavedDataset:
        record = dict(self._connection.action("saved_dataset", name=name, version=version))
        return RemoteSavedDataset(record.pop("name"), record.pop("version"), record, fetch=self._dataset_rows)

    def list_saved_datasets(self) -> list[dict]:
        return self._listing["saved_datasets"]

    def _dataset_rows(self, name: str, version: int) -> pa.Table:
        return self._connection.get("get_saved_dataset", name=name, version=version)

    def predict(self, uri: str, entity_df: Any, *, timestamp_field: str = "event_timestamp",
                batch_rows: int | None = None, prediction_column: str = "prediction") -> pa.Table:
        """Batch scoring on the server: the entity rows with the version's features as of each
        row's time and a prediction column (``store.predict``)."""
        reader = self._connection.exchange("predict", to_arrow_table(entity_df, None), model=uri,
                                           timestamp_field=timestamp_field, batch_rows=batch_rows,
                                           prediction_column=prediction_column)
        return reader.read_all()

    # -- online ------------------------------------------------------------------------

    def get_online_features(self, features: Sequence[str] | FeatureService | str,
                            entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
                            full_feature_names: bool = False) -> OnlineResponse:
        reader = self._connection.exchange("get_online_features", _rows(entity_rows), **_features(features),
                                           full_feature_names=bool(full_feature_names))
        return online_from_arrow(reader.read_all())

    def predict_online(self, uri: str, entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
                       request: Mapping[str, Sequence[Any]] | None = None) -> Prediction:
        reader = self._connection.exchange("predict_online", _rows(entity_rows), model=uri,
                                           request=dict(request) if request is not None else None)
        return prediction_from_arrow(reader.read_all())

    def push(self, push_source_name: str, df: Any, to: str = "online") -> PushResult:
        """Write rows to the views fed by a push source on the server (needs a key there)."""
        answer = self._connection.put("push", rows_to_arrow(df), push_source=push_source_name, to=str(getattr(to, "value", to)))
        return PushResult(answer["rows"], answer.get("late", {}))

    # -- definitions and models --------------------------------------------------------

    @property
    def _listing(self) -> dict:
        return self._connection.action("list")

    @property
    def contents(self) -> RepoContents:
        """The server's registered definitions, read now (``list_*``/``get_*`` read them)."""
        return contents_from_registry([_Spec(**d) for d in self._listing["definitions"]])

    @cached_property
    def models(self) -> RemoteModels:
        return RemoteModels(self._connection)

    # -- plumbing ----------------------------------------------------------------------

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> "RemoteFeatureStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteFeatureStore(url={self.url!r})"


class _Spec:
    """A registry record as ``contents_from_registry`` reads it (kind, name, spec)."""

    def __init__(self, kind: str, name: str, spec: dict):
        self.kind, self.name, self.spec = kind, name, spec


def _features(features: Sequence[str] | FeatureService | str) -> dict[str, Any]:
    """A service by its name (the server resolves it against its registry), references as a list."""
    if isinstance(features, FeatureService):
        return {"feature_service": features.name}
    if isinstance(features, str):
        return {"features": [features]} if ":" in features else {"feature_service": features}
    refs = list(features)
    if not refs:
        raise InputError("no features requested; pass a list of 'view:feature' references or a feature service")
    return {"features": refs}


def _rows(entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]) -> pa.Table:
    if isinstance(entity_rows, Mapping):
        return pa.table({k: list(v) for k, v in entity_rows.items()})
    return pa.Table.from_pylist([dict(r) for r in entity_rows])


