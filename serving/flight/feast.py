"""Feast's remote offline store, unchanged, against our Flight server.

A Feast client whose ``feature_store.yaml`` says ``offline_store: {type: remote, host,
port}`` sends a JSON command with ``"api"`` in the Flight descriptor (Feast 0.67's
``feast/infra/offline_stores/remote.py``):

- ``get_historical_features`` over ``do_exchange``: the entity frame is uploaded on the
  call (``pa.Table.from_pandas``; a one-column table ``key`` stands for "no frame", with
  the SQL in ``entity_df_sql``), and the training set streams back on it. The command
  holds ``feature_refs`` (the client resolved any feature service to them against its own
  registry), ``feature_view_names`` and ``name_aliases`` (a service's projection renamed
  with ``with_name``), ``full_feature_names`` and ``project``. We resolve the references
  against this server's definitions, so the client's registry must name the same views
  and features; ``project`` is not checked (the server serves its own repo). The entity
  timestamp column is Feast's: ``event_timestamp``, else the only timestamp column.
- ``persist`` over ``do_put`` (``RetrievalJob.persist``, used by
  ``create_saved_dataset``): the training set is saved as our saved dataset named after
  the storage's data source name (for ``SavedDatasetFileStorage(path=".../name.parquet")``,
  whose source is named by its path: ``name``). A write: it needs a key when keys are configured.
- ``get_table_column_names_and_types_from_data_source`` (``feast apply`` infers entity
  column types with it) answers for our source of the same name; ``validate_data_source``
  (``do_put``) is accepted. The other APIs (pulls for materialization,
  ``offline_write_batch``, ``write_logged_features``) are refused with an error saying so.

A Feast client sends a key with ``auth: {type: oidc, token: <key>}`` (as
``authorization: Bearer <key>``). Errors reach it as ``FlightServerError`` whose message
starts with our error's type and message.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

import pyarrow as pa

from featurestore.errors import InputError, NotFoundError
from featurestore.source_tables import source_table
from serving.flight.auth import require_key
from serving.flight.uploads import read_upload, timestamp_column

#: The FeatureFlightServer calling in (not imported: server.py imports this module).
FeatureFlightServer = Any

__all__ = ["exchange", "put"]

_UNSUPPORTED = ("pull_all_from_table_or_query", "pull_latest_from_table_or_query", "offline_write_batch",
                "write_logged_features")


def exchange(server: FeatureFlightServer, context, command: dict, reader, writer) -> None:
    api = command.get("api")
    if api == "get_table_column_names_and_types_from_data_source":
        require_key(context, server.auth, write=False)
        read_upload(reader, server.settings.max_upload_bytes)
        server.refresh_definitions()
        server.send(context, writer, _source_columns(server, command).to_reader())
        return
    if api != "get_historical_features":
        raise _unsupported(api)
    require_key(context, server.auth, write=False)
    entities = read_upload(reader, server.settings.max_upload_bytes)
    server.refresh_definitions()
    with server.slots.hold("get_historical_features"):
        job, renames = _job(server, command, entities)
        result = job.to_reader()
        if renames:
            result = _renamed(result, renames)
        server.send(context, writer, result)


def put(server: FeatureFlightServer, context, command: dict, reader) -> None:
    api = command.get("api")
    if api == "validate_data_source":
        require_key(context, server.auth, write=False)
        return
    if api != "persist":
        raise _unsupported(api)
    require_key(context, server.auth, write=True)
    if command.get("retrieve_func") != "get_historical_features":
        raise InputError(f"persist of {command.get('retrieve_func')!r} is not supported; persist a "
                         "get_historical_features job")
    name = command.get("data_source_name")
    if not isinstance(name, str) or not name:
        raise InputError("persist needs a named storage: give the saved dataset storage's data source a name "
                         "(it names our saved dataset)")
    if "/" in name or name.endswith(".parquet"):  # SavedDatasetFileStorage(path=...): its source is named by the path
        name = PurePosixPath(name).stem
    entities = read_upload(reader, server.settings.max_upload_bytes)
    server.refresh_definitions()
    with server.slots.hold("persist"):
        job, _ = _job(server, command, entities)
        job.save(name)


def _job(server: FeatureFlightServer, command: dict, entities: pa.Table):
    refs, renames = _refs(command)
    entity_df: Any = entities
    if entities.column_names == ["key"]:  # Feast's stand-in for "no entity frame"
        entity_df = command.get("entity_df_sql") or None
    timestamp = timestamp_column(entities, None) if isinstance(entity_df, pa.Table) else "event_timestamp"
    job = server.store.get_historical_features(
        entity_df, refs, bool(command.get("full_feature_names", False)), timestamp_field=timestamp,
        start_date=_time(command.get("start_date")), end_date=_time(command.get("end_date")))
    return job, renames


def _source_columns(server: FeatureFlightServer, command: dict) -> pa.Table:
    """The columns and Arrow types of a source (Feast's ``apply`` infers entity column types
    from them). Feast sends the source as JSON; we answer for our source of the same name."""
    try:
        name = json.loads(command.get("data_source_proto") or "{}").get("name")
    except (ValueError, AttributeError):
        name = None
    store = server.store
    for view in store.contents.feature_views.values():
        if name in (view.source.name, getattr(view.source, "batch_source", None) and view.source.batch_source.name):
            schema = store.offline.read_schema(source_table(view, store.repo_path, store.config.offline_store,
                                                            store.contents.sources.values()))
            return pa.table({"name": schema.names, "type": [str(t) for t in schema.types]})
    raise NotFoundError("data source", str(name), store.contents.sources,
                        hint="define the schema of the Feast view explicitly, or apply the source here")


def _refs(command: dict) -> tuple[list[str], dict[str, str]]:
    """Our references for Feast's, and the output columns to rename for aliased views."""
    refs = command.get("feature_refs")
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise InputError("the get_historical_features command has no 'feature_refs' list")
    names, aliases = command.get("feature_view_names") or [], command.get("name_aliases") or []
    view_of = {alias: name for name, alias in zip(names, aliases) if alias and alias != name}
    full = bool(command.get("full_feature_names", False))
    ours, renames = [], {}
    for ref in refs:
        view, _, feature = ref.partition(":")
        if view in view_of:
            ours.append(f"{view_of[view]}:{feature}")
            if full:
                renames[f"{view_of[view]}__{feature}"] = f"{view}__{feature}"
        else:
            ours.append(ref)
    return ours, renames


def _renamed(reader: pa.RecordBatchReader, renames: dict[str, str]) -> pa.RecordBatchReader:
    schema = pa.schema([field.with_name(renames.get(field.name, field.name)) for field in reader.schema],
                       metadata=reader.schema.metadata)
    return pa.RecordBatchReader.from_batches(
        schema, (pa.RecordBatch.from_arrays(b.columns, schema=schema) for b in reader))


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _unsupported(api: Any) -> InputError:
    what = f"Feast's {api!r}" if api in _UNSUPPORTED else f"the Feast API {api!r}"
    return InputError(f"{what} is not served here: this server answers get_historical_features and persist "
                      "(docs/remote.md); materialize with `featurestore materialize` on the server instead")
