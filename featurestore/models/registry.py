"""``store.models``: register, name, alias, load and archive model versions.

The rules kept here:
- registering writes the artifact first (content-addressed, so a retry writes nothing
  new) and the version record last, in one registry transaction that also allocates the
  version number: a failure leaves no half version and concurrent registrations get
  distinct consecutive numbers;
- a version never changes after it is written, except its status (ready -> archived);
- an alias moves in one transaction that checks its target is a ready version, and every
  move (or deletion) is a new registry version of the alias: its history is the move log;
- a version cannot be archived while an object of an ``ARCHIVE_BLOCKERS`` kind (an
  alias or a rollout) depends on it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import registry as _registry
from registry import ObjectSpec, StoredObject

from featurestore.errors import FeatureStoreError, InputError, InUseError, NotFoundError
from featurestore.models.arguments import (
    check_json, check_metrics, check_on_missing, check_tags, flavor_for, tag_filter, tags_match, version_number,
)
from featurestore.models.artifacts import ArtifactStore
from featurestore.models.flavors import get_flavor
from featurestore.models.lineage import code_version, resolve_dataset, resolve_inputs, signature_for
from featurestore.models.loaded import LoadedModel, repo_on_path
from featurestore.models.profile import PROFILE_FILE, dumps_profile, reference_profile
from featurestore.models.records import (
    ARCHIVED, DEFAULT_ON_MISSING, READY, AliasMove, Model, ModelVersion, alias_move, model_record, version_record,
)
from featurestore.models.rollouts import Rollouts
from featurestore.models.uri import ModelURI, check_alias, check_model_name, parse_uri

__all__ = ["ARCHIVE_BLOCKERS", "LoadedModel", "ModelRegistry"]

log = logging.getLogger("featurestore.models")

#: Kinds whose objects pin the model version they depend on against archiving: an alias,
#: and a running or paused rollout (the versions it routes traffic to).
ARCHIVE_BLOCKERS: tuple[str, ...] = ("model_alias", "rollout")


class ModelRegistry:
    """The model registry of a ``FeatureStore`` (``store.models``)."""

    def __init__(self, store, artifacts: ArtifactStore):
        self._store = store
        self.artifacts = artifacts  # where version files live: ``artifacts:`` in featurestore.yaml

    @property
    def rollouts(self) -> Rollouts:
        """Canary and shadow rollouts of new versions (docs/rollouts.md)."""
        return Rollouts(self)

    # -- register ----------------------------------------------------------------------

    def register(
        self, name: str, model: Any, flavor: str | None = None, features: Any = None,
        training_dataset: Any = None, description: str | None = None, tags: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None, params: Mapping[str, Any] | None = None,
        request_fields: Any = None, output: Any = None, trusted: bool = False,
        flavor_options: Mapping[str, Any] | None = None, on_missing: str = DEFAULT_ON_MISSING,
        defaults: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Store ``model`` (an object, a native model file or an MLflow model directory) as the
        next version of ``name``, with what made it. See docs/models.md; ``on_missing`` and
        ``defaults``: docs/predict.md."""
        check_model_name(name)
        tags, metrics, params = check_tags(tags, "tags"), check_metrics(metrics), check_json(params, "params")
        dataset = resolve_dataset(self._store, training_dataset) if training_dataset is not None else None
        inputs = resolve_inputs(self._store, features, dataset)
        signature = check_on_missing(on_missing, signature_for(inputs, dataset, request_fields, output), defaults)
        chosen, source, options = flavor_for(model, flavor, trusted, flavor_options)
        with tempfile.TemporaryDirectory(prefix="featurestore-model-") as tmp, repo_on_path(self._store.repo_path):
            meta = chosen.save(source, Path(tmp), **options)
            digest = self.artifacts.put(Path(tmp))
            profile = None if dataset is None else self._put_profile(dataset["table"], signature, chosen,
                                                                    Path(tmp), meta, trusted)
        now = _now()
        spec = {
            "model": name, "status": READY, "flavor": chosen.name, "flavor_meta": meta, "artifact": digest,
            "signature": signature.to_dict(), "features": list(inputs.refs), "feature_service": inputs.service,
            "feature_view_versions": inputs.view_versions,
            "training_dataset": None if dataset is None else {k: dataset[k] for k in ("name", "version", "sha256")},
            "request_fields": [c.name for c in signature.inputs[len(inputs.columns):]], "on_missing": on_missing,
            "metrics": metrics, "params": params, "tags": tags, "description": description or "",
            "created_at": now,
        }
        if profile is not None:
            spec["profile"] = profile
        code = code_version(self._store.repo_path)
        if code is not None:
            spec["code"] = code
        depends = [("model", name), *inputs.depends_on]
        if dataset is not None:
            depends.append(("saved_dataset", dataset["name"]))
        with self._transaction() as tx:
            if tx.get("model", name) is None:
                tx.put(ObjectSpec("model", name, {"description": description or "", "tags": tags, "owner": "",
                                                  "created_at": now}))
            stored = tx.put_numbered("model_version", f"{name}/", spec, depends)
        return version_record(stored)

    def _put_profile(self, table, signature, flavor, folder: Path, meta, trusted: bool) -> str:
        """Profile the training set (and the model's output on it) for the drift monitor;
        stored beside the artifact, content-addressed: ``"sha256:..."`` of its folder."""
        inputs = signature.input_names
        predict = None
        if all(name in table.column_names for name in inputs):  # request fields may be absent
            try:
                predictor = flavor.load(folder, meta, trusted=trusted)
                predict = lambda rows: predictor.predict(signature.conform(rows, label="profile"))  # noqa: E731
            except FeatureStoreError as exc:  # e.g. an untrusted type: the inputs are still profiled
                log.warning("model %s: its output is left out of the drift profile: %s", flavor.name, exc)
        profile = reference_profile(table, inputs, predict)
        with tempfile.TemporaryDirectory(prefix="featurestore-profile-") as tmp:
            (Path(tmp) / PROFILE_FILE).write_bytes(dumps_profile(profile))
            return self.artifacts.put(Path(tmp))

    def profile(self, uri: str | ModelURI) -> dict[str, Any] | None:
        """The reference profile of the version's training set (featurestore/models/profile.py),
        or None when it was registered without a training_dataset."""
        version = self.get(uri)
        obj = self._version_object(parse_uri(version.uri))
        digest = obj.spec.get("profile")
        if digest is None:
            return None
        folder = self.artifacts.fetch(digest, label=f"profile of model {version.name} version {version.version}")
        return json.loads((folder / PROFILE_FILE).read_bytes())

    # -- read --------------------------------------------------------------------------

    def get(self, uri: str | ModelURI) -> ModelVersion:
        """The version ``name/3``, ``name@alias`` or ``name`` (its ``champion``) names."""
        obj = self._version_object(parse_uri(uri))
        return version_record(obj, self._aliases_of(obj.spec["model"]).get(_number(obj), ()))

    def load(self, uri: str | ModelURI, trusted: bool = False) -> LoadedModel:
        """The version's model, from its verified artifact, ready to ``predict``."""
        version = self.get(uri)
        folder = self.artifacts.fetch(version.artifact, label=f"model {version.name} version {version.version}")
        with repo_on_path(self._store.repo_path):  # python-flavor classes defined in the repo
            predictor = get_flavor(version.flavor).load(folder, version.flavor_meta, trusted=trusted)
        return LoadedModel(version, predictor)

    def list(self) -> list[Model]:
        """Every model with its latest version number and its aliases."""
        reg, project = self._store.registry, self._store.project
        latest: dict[str, int] = {}
        for obj in reg.list(project, "model_version"):
            latest[obj.spec["model"]] = max(latest.get(obj.spec["model"], 0), _number(obj))
        aliases = self._all_aliases()
        return [model_record(m, latest.get(m.name), aliases.get(m.name, {})) for m in reg.list(project, "model")]

    def get_model(self, name: str) -> Model:
        """Model ``name`` with its latest version number and aliases."""
        obj = self._model(check_model_name(name))
        numbers = [_number(o) for o in self._store.registry.list(self._store.project, "model_version")
                   if o.spec["model"] == name]
        return model_record(obj, max(numbers, default=None), self._alias_map(name))

    def update_model(self, name: str, description: str | None = None, tags: Mapping[str, str] | None = None,
                     owner: str | None = None) -> Model:
        """Change a model's description, tags (replaced as a whole) or owner; its versions
        are untouched. The model's registry history keeps the earlier values."""
        check_model_name(name)
        with self._transaction() as tx:
            spec = dict(self._model(name, tx).spec)
            if description is not None:
                spec["description"] = str(description)
            if tags is not None:
                spec["tags"] = check_tags(tags, "tags")
            if owner is not None:
                spec["owner"] = str(owner)
            tx.put(ObjectSpec("model", name, spec))
        return self.get_model(name)

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of model ``name``, oldest first, with its aliases."""
        self._model(check_model_name(name))
        aliases = self._aliases_of(name)
        objects = [o for o in self._store.registry.list(self._store.project, "model_version")
                   if o.spec["model"] == name]
        return [version_record(o, aliases.get(_number(o), ())) for o in sorted(objects, key=_number)]

    def search(self, name: str | None = None, tag: str | Mapping[str, str] | None = None,
               alias: str | None = None) -> list[ModelVersion]:
        """Versions whose model name contains ``name``, whose (or whose model's) tags hold
        ``tag`` (``"key"``, ``"key=value"`` or a dict) and that ``alias`` points at."""
        reg, project = self._store.registry, self._store.project
        model_tags = {m.name: m.spec.get("tags", {}) for m in reg.list(project, "model")}
        wanted = tag_filter(tag)
        by_model = {m: _by_version(a) for m, a in self._all_aliases().items()}  # one read, not one per version
        found = []
        for obj in sorted(reg.list(project, "model_version"), key=lambda o: (o.spec["model"], _number(o))):
            model = obj.spec["model"]
            if name is not None and name.lower() not in model.lower():
                continue
            if wanted and not tags_match({**model_tags.get(model, {}), **obj.spec.get("tags", {})}, wanted):
                continue
            aliases = by_model.get(model, {}).get(_number(obj), ())
            if alias is not None and alias not in aliases:
                continue
            found.append(version_record(obj, aliases))
        return found

    # -- aliases -----------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int | str, reason: str | None = None) -> ModelVersion:
        """Point ``name@alias`` at ``version`` (a ready one); the move is kept in its history."""
        check_model_name(name)
        check_alias(alias)
        number = version_number(version)
        key = f"{name}@{alias}"
        with self._transaction() as tx:
            self._model(name, tx)
            target = tx.get("model_version", f"{name}/{number}")
            if target is None:
                raise _unknown_version(tx, name, number)
            if target.spec.get("status") != READY:
                raise InputError(f"{name}/{number} is {target.spec.get('status')}; an alias can only point at a "
                                 "ready version")
            current = tx.get("model_alias", key)
            previous = current.spec["version"] if current else None
            if previous != number:
                tx.put(ObjectSpec("model_alias", key, {"model": name, "alias": alias, "version": number,
                                                       "previous": previous, "reason": reason},
                                  (("model_version", target.name),)))
        return self.get(f"{name}/{number}")

    def delete_alias(self, name: str, alias: str, reason: str | None = None) -> AliasMove:
        """Remove ``name@alias``; the deletion is kept in its history."""
        check_model_name(name)
        check_alias(alias)
        with self._transaction() as tx:
            self._model(name, tx)
            current = tx.get("model_alias", f"{name}@{alias}")
            if current is None:
                raise _unknown_alias(tx, name, alias)
            gone = tx.remove("model_alias", current.name, {"model": name, "alias": alias, "version": None,
                                                          "previous": current.spec["version"], "reason": reason})
        return alias_move(gone)

    def alias_history(self, name: str, alias: str) -> list[AliasMove]:
        """Every move of ``name@alias``, oldest first: when, from, to and why."""
        check_model_name(name)
        check_alias(alias)
        self._model(name)
        history = self._store.registry.history(self._store.project, "model_alias", f"{name}@{alias}")
        if not history:
            raise _unknown_alias(self._reader(), name, alias)
        return [alias_move(obj) for obj in history]

    # -- archive -----------------------------------------------------------------------

    def archive(self, uri: str | ModelURI) -> ModelVersion:
        """Mark a version archived: still readable and loadable by number, never aliased again.

        Refused (InUseError) while an alias points at it; move or delete the alias first."""
        obj = self._version_object(parse_uri(uri))
        with self._transaction() as tx:
            current = tx.get("model_version", obj.name)
            readers = tx.readers("model_version", obj.name, ARCHIVE_BLOCKERS)
            if readers:
                names = ", ".join(n for _, n in readers)
                raise InUseError(f"cannot archive {obj.name}: {names} point(s) at it; move or delete the "
                                 "alias, or end the rollout, first (featurestore models unalias, "
                                 "featurestore rollout rollback)")
            if current.spec.get("status") != ARCHIVED:
                tx.put(ObjectSpec("model_version", obj.name, {**current.spec, "status": ARCHIVED,
                                                              "archived_at": _now()}, current.depends_on))
        return self.get(obj.name)

    # -- plumbing ----------------------------------------------------------------------

    def _version_object(self, uri: ModelURI) -> StoredObject:
        reader = self._reader()
        self._model(uri.name, reader)
        number = uri.version
        if uri.alias is not None:
            alias = reader.get("model_alias", f"{uri.name}@{uri.alias}")
            if alias is None:
                raise _unknown_alias(reader, uri.name, uri.alias)
            number = alias.spec["version"]
        obj = reader.get("model_version", f"{uri.name}/{number}")
        if obj is None:
            raise _unknown_version(reader, uri.name, number)
        return obj

    def _reader(self) -> _Reader:
        return _Reader(self._store.registry, self._store.project)

    def _model(self, name: str, reader: _Reader | _registry.Transaction | None = None) -> StoredObject:
        reader = reader or self._reader()
        obj = reader.get("model", name)
        if obj is None:
            known = [m.name for m in reader.list("model")]
            raise NotFoundError("model", name, known, hint=f"known models: {', '.join(known)}" if known else
                                "no model is registered yet; store.models.register(...) adds one")
        return obj

    def _alias_map(self, name: str) -> dict[str, int]:
        return _alias_map(self._reader(), name)

    def _aliases_of(self, name: str) -> dict[int, tuple[str, ...]]:
        return _by_version(self._alias_map(name))

    def _all_aliases(self) -> dict[str, dict[str, int]]:
        """``{model: {alias: version}}`` for every model, from one registry read."""
        found: dict[str, dict[str, int]] = {}
        for obj in self._store.registry.list(self._store.project, "model_alias"):
            found.setdefault(obj.spec["model"], {})[obj.spec["alias"]] = obj.spec["version"]
        return found

    def _transaction(self) -> contextlib.AbstractContextManager[_registry.Transaction]:
        # store.registry (featurestore.catalog) maps the registry's errors.
        return self._store.registry.transaction(self._store.project)


class _Reader:
    """Registry reads outside a transaction, with the calls of ``registry.Transaction``, so
    the lookups and error messages below serve both."""

    def __init__(self, registry, project: str):
        self._registry, self._project = registry, project

    def get(self, kind: str, name: str) -> StoredObject | None:
        return self._registry.get(self._project, kind, name)

    def list(self, kind: str, prefix: str = "") -> list[StoredObject]:
        return [o for o in self._registry.list(self._project, kind) if o.name.startswith(prefix)]


def _alias_map(reader, name: str) -> dict[str, int]:
    return {o.spec["alias"]: o.spec["version"] for o in reader.list("model_alias", f"{name}@")}


def _by_version(aliases: dict[str, int]) -> dict[int, tuple[str, ...]]:
    by_version: dict[int, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(version, []).append(alias)
    return {v: tuple(sorted(a)) for v, a in by_version.items()}


def _unknown_alias(reader, name: str, alias: str) -> NotFoundError:
    known = sorted(_alias_map(reader, name))
    return NotFoundError("alias", alias, known, where=f"model {name!r}",
                         hint=(f"its aliases: {', '.join(known)}" if known else "it has no aliases") +
                         f"; name a version as {name}/N, or set one with set_alias")


def _unknown_version(reader, name: str, number: int) -> NotFoundError:
    numbers = sorted(_number(o) for o in reader.list("model_version", f"{name}/"))
    span = f"versions 1 to {numbers[-1]}" if numbers else "no versions"
    return NotFoundError(f"version of model {name!r}", str(number), hint=f"it has {span}")


def _number(obj: StoredObject) -> int:
    return int(obj.name.rsplit("/", 1)[1])


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
