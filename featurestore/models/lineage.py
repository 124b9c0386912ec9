"""What made a model version: its features, training set, signature and code commit.

Resolved once, when the version is registered, and recorded in the version's spec; the
registry edges (``depends_on``) that come with it let ``featurestore registry lineage``
walk from a data source to the aliases that serve a model, and keep a training set or
feature service a version depends on from being removed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featurestore.definitions import FeatureService
from featurestore.errors import InputError, NotFoundError, SchemaError
from featurestore.models.signature import ColumnSpec, Signature
from featurestore.refs import resolve_request
from featurestore.types import FeatureType, parse_type

__all__ = ["Inputs", "code_version", "resolve_dataset", "resolve_inputs", "signature_for"]


@dataclass(frozen=True)
class Inputs:
    """A version's input features: refs and column names in the order models see them."""

    refs: tuple[str, ...]
    columns: tuple[str, ...]
    types: tuple[FeatureType, ...]
    service: dict[str, Any] | None
    view_versions: dict[str, int]

    @property
    def depends_on(self) -> tuple[tuple[str, str], ...]:
        if self.service is not None:
            return (("feature_service", self.service["name"]),)
        return tuple(("feature_view", v) for v in self.view_versions)


def resolve_dataset(store, training_dataset: Any) -> dict[str, Any]:
    """``name``, ``name/3`` or what ``job.save()`` returned -> the pinned saved dataset
    version: its name, version, sha256, schema and feature refs."""
    if isinstance(training_dataset, Mapping):
        name, version = training_dataset.get("name"), training_dataset.get("version")
    elif isinstance(training_dataset, str):
        name, _, number = training_dataset.partition("/")
        if number and not number.isdigit():
            raise InputError(f"training_dataset {training_dataset!r}: use 'name' or 'name/version'")
        version = int(number) if number else None
    else:
        raise InputError(f"training_dataset must be a saved dataset's name, 'name/version' or what "
                         f"job.save() returned, not {type(training_dataset).__name__}")
    if not isinstance(name, str) or not name:
        raise InputError(f"training_dataset {training_dataset!r} names no saved dataset")
    saved = store.get_saved_dataset(name, None if version is None else int(version))
    # Read through the dataset's own check: a file changed since it was saved is refused
    # (IntegrityError), so a version never records rows other than the ones it names.
    table = saved.to_arrow()
    return {"name": saved.name, "version": saved.version, "sha256": saved.sha256, "schema": table.schema,
            "table": table,
            "features": list(saved.spec["features"])}


def resolve_inputs(store, features: Any, dataset: dict[str, Any] | None) -> Inputs:
    """The features a version reads: a feature service (name), a list of refs, or, with
    neither, the training set's own features. Column names follow the training set."""
    contents = store.contents
    if features is None:
        if dataset is None:
            raise InputError("register needs features= (a feature service or 'view:feature' refs) or "
                             "training_dataset= to know which features the model reads")
        features = dataset["features"]
    if isinstance(features, FeatureService):
        features = features.name
    if isinstance(features, str) and ":" not in features:
        if features not in contents.feature_services:
            raise NotFoundError("feature service", features, contents.feature_services,
                                hint="run `featurestore apply` after defining it")
    elif isinstance(features, str):
        features = [features]
    elif not isinstance(features, Sequence) or not all(isinstance(f, str) for f in features):
        raise InputError("features= takes a feature service name or a list of 'view:feature' refs")
    schema = dataset["schema"] if dataset else None
    columns, types, refs = [], [], []
    resolution = resolve_request(contents, features)
    outputs = [(rv.view, rv.features, rv.output_names) for rv in resolution.views]
    outputs += [(t.odfv, t.features, t.output_names) for t in resolution.transforms]
    for view, names, output_names in outputs:
        dtypes = {f.name: f.dtype for f in view.features}
        for feature, output in zip(names, output_names):
            if output in resolution.hidden:  # read only as an on-demand view's input
                continue
            ref = f"{view.name}:{feature}"
            if dataset is not None and ref not in dataset["features"]:
                raise SchemaError(f"training dataset {dataset['name']!r} v{dataset['version']} has no feature "
                                  f"{ref!r}; its features: {', '.join(dataset['features'])}")
            column = feature
            if schema is not None and feature not in schema.names:
                column = f"{view.name}__{feature}"  # saved with full_feature_names=True
            refs.append(ref)
            columns.append(column)
            types.append(dtypes[feature])
    service = None
    if isinstance(features, str):
        stored = store.registry.get(store.project, "feature_service", features)
        service = {"name": features, "version": stored.version if stored else None}
    view_versions = {}
    for ref in refs:
        view = ref.split(":")[0]
        kind = "on_demand_feature_view" if view in contents.on_demand_feature_views else "feature_view"
        stored = store.registry.get(store.project, kind, view)
        view_versions[view] = stored.version if stored else None
    return Inputs(tuple(refs), tuple(columns), tuple(types), service, view_versions)


def signature_for(
    inputs: Inputs,
    dataset: dict[str, Any] | None,
    request_fields: Sequence[str] | Mapping[str, Any] | None,
    output: Any,
) -> Signature:
    """Inputs: the feature columns in order, then the request fields; outputs: ``output``.

    With a training set, types come from its file (``Signature.infer``), so the signature
    holds what the model was really trained on; without one, from the feature views'
    declared types, and request fields and the output must say their types.
    """
    fields = _request_fields(request_fields)
    outputs = _outputs(output)
    if dataset is not None:
        schema = dataset["schema"]
        names = [*inputs.columns, *fields]
        explicit = {n: t for n, t in fields.items() if t is not None}
        inferred = Signature.infer(schema, [n for n in names if n not in explicit],
                                   [n for n, t in outputs if t is None])
        by_name = {c.name: c for c in (*inferred.inputs, *inferred.outputs)}
        return Signature(
            tuple(by_name.get(n) or ColumnSpec(n, explicit[n]) for n in names),
            tuple(by_name.get(n) or ColumnSpec(n, t) for n, t in outputs),
        )
    untyped = [n for n, t in (*fields.items(), *outputs) if t is None]
    if untyped:
        raise InputError(f"without training_dataset= the types of {', '.join(map(repr, untyped))} are unknown; "
                         "give them as {name: type} (request_fields) or (name, type) (output), e.g. "
                         "('label', 'Int64')")
    return Signature(
        tuple(ColumnSpec(c, t) for c, t in zip(inputs.columns, inputs.types)) + tuple(
            ColumnSpec(n, t) for n, t in fields.items()),
        tuple(ColumnSpec(n, t) for n, t in outputs),
    )


def _request_fields(fields: Any) -> dict[str, FeatureType | None]:
    if fields is None:
        return {}
    if isinstance(fields, str):
        fields = [fields]
    if isinstance(fields, Mapping):
        return {_name(n, "request field"): _dtype(t, n) for n, t in fields.items()}
    return {_name(n, "request field"): None for n in fields}


def _outputs(output: Any) -> list[tuple[str, FeatureType | None]]:
    if output is None:
        return []
    if isinstance(output, ColumnSpec):
        return [(output.name, output.dtype)]
    if isinstance(output, str):
        return [(output, None)]
    if isinstance(output, (tuple, list)) and len(output) == 2 and isinstance(output[0], str):
        return [(output[0], _dtype(output[1], output[0]))]
    raise InputError(f"output= takes a column name, (name, type) or a ColumnSpec, not {output!r}")


def _name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise InputError(f"a {what} must be a non-empty column name, not {name!r}")
    return name


def _dtype(dtype: Any, name: str) -> FeatureType:
    if isinstance(dtype, FeatureType):
        return dtype
    try:
        return parse_type(str(dtype))
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"column {name!r}: {dtype!r} is not a feature type such as Float64 ({exc})") from None


def code_version(repo: Path) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` when ``repo`` is in a git checkout; None otherwise (or
    without git). Dirty means uncommitted changes: the commit alone does not rebuild it."""
    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}
