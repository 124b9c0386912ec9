"""What ``store.models.register`` checks before it writes anything: the flavor that
saves the model, tags, metrics, params and version numbers; and the tag filter of
``search``. Every failure is a user error that names the argument.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from featurestore.errors import InputError, ModelError
from featurestore.models.flavors import Flavor, get_flavor, infer_flavor, read_mlflow_model
from featurestore.models.records import ON_MISSING
from featurestore.models.signature import Signature

__all__ = ["check_json", "check_metrics", "check_on_missing", "check_tags", "flavor_for", "tag_filter", "tags_match",
           "version_number"]


def flavor_for(model: Any, flavor: str | None, trusted: bool,
                options: Mapping[str, Any] | None) -> tuple[Flavor, Any, dict[str, Any]]:
    """The flavor to save ``model`` with, what to hand its ``save`` and the save options."""
    options = dict(options or {})
    source = model
    if isinstance(model, (str, os.PathLike)) and (Path(model) / "MLmodel").is_file():
        chosen, mlflow_options, source = read_mlflow_model(model)
        if flavor is not None and get_flavor(flavor).name != chosen.name:
            raise ModelError(f"{os.fspath(model)!r} is an MLflow model of flavor {chosen.name!r}, not {flavor!r}")
        options = {**mlflow_options, **options}
    else:
        chosen = get_flavor(flavor) if flavor is not None else infer_flavor(model)
        if not isinstance(model, (str, os.PathLike)) and not chosen.accepts(model):
            raise ModelError(f"a {type(model).__module__}.{type(model).__qualname__} is not a {chosen.name} model; "
                             "pass the flavor that saves it, or leave flavor= out to infer it")
    if chosen.name == "python" and "params" not in options and callable(getattr(model, "get_params", None)):
        options["params"] = model.get_params()  # a python model's state, re-created on load
    if trusted and "trusted" in inspect.signature(chosen.save).parameters:
        options["trusted"] = True
    return chosen, source, options


def check_on_missing(on_missing: Any, signature: Signature, defaults: Mapping[str, Any] | None) -> Signature:
    """The signature with ``defaults`` set, after checking the policy: under ``default``
    every input needs one, so a missing feature never finds none at request time."""
    if on_missing not in ON_MISSING:
        raise InputError(f"on_missing must be one of {', '.join(ON_MISSING)}, not {on_missing!r}")
    if defaults is not None and not isinstance(defaults, Mapping):
        raise InputError(f"defaults must be a dict of input column -> value, not {type(defaults).__name__}")
    signature = signature.with_defaults(dict(defaults or {}))
    if on_missing == "default":
        lacking = [spec.name for spec in signature.inputs if spec.default is None]
        if lacking:
            raise InputError(f"on_missing='default' needs a default for every input; {', '.join(map(repr, lacking))} "
                             "ha" + ("s" if len(lacking) == 1 else "ve") + " none: pass defaults={name: value} "
                             "(CLI: --default NAME=VALUE)")
    return signature


def version_number(version: Any) -> int:
    if isinstance(version, str) and version.isdigit():
        version = int(version)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InputError(f"version {version!r} is not a version number (versions count from 1)")
    return version


def check_tags(values: Any, what: str) -> dict[str, str]:
    values = check_json(values, what)
    bad = [k for k, v in values.items() if not isinstance(v, str)]
    if bad:
        raise InputError(f"{what} values must be strings; {', '.join(map(repr, bad))} are not")
    return values


def check_metrics(values: Any) -> dict[str, float]:
    values = check_json(values, "metrics")
    bad = [k for k, v in values.items() if isinstance(v, bool) or not isinstance(v, (int, float))]
    if bad:
        raise InputError(f"metrics must be numbers; {', '.join(map(repr, bad))} are not")
    return {k: float(v) for k, v in values.items()}


def check_json(values: Any, what: str) -> dict[str, Any]:
    if values is None:
        return {}
    if not isinstance(values, Mapping) or not all(isinstance(k, str) and k for k in values):
        raise InputError(f"{what} must be a dict with string keys, not {values!r}")
    try:
        return json.loads(json.dumps(dict(values)))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must hold JSON values (numbers, strings, lists, dicts): {exc}") from None


def tag_filter(tag: Any) -> dict[str, str | None]:
    if tag is None:
        return {}
    if isinstance(tag, Mapping):
        return {str(k): (None if v is None else str(v)) for k, v in tag.items()}
    key, sep, value = str(tag).partition("=")
    return {key: value if sep else None}


def tags_match(tags: dict[str, str], wanted: dict[str, str | None]) -> bool:
    return all(k in tags and (v is None or tags[k] == v) for k, v in wanted.items())
