"""Errors a user of the feature store can see.

Every user error is a ``FeatureStoreError``: its message says what is wrong, where, and
what to do, so the CLI prints it as one line and the HTTP layer turns it into a 4xx. The
tree::

    FeatureStoreError
    ├── ConfigError              featurestore.yaml or an environment override is invalid
    ├── DefinitionError          a feature definition is invalid or its module failed
    ├── NotFoundError            an unknown view, feature, service, entity or push source
    ├── SchemaError              a column is missing or has the wrong type
    ├── InputError               a request's data is malformed (entity rows, push rows)
    │   └── MissingFeatureError  a model's input feature is missing for an entity and
    │                            its version's on_missing policy is ``error``
    ├── RegistryError            the registry cannot be read or written
    │   └── ConflictError        another writer changed the registry at the same moment
    ├── InUseError               an object cannot be removed or changed while another
    │                            depends on it (a model version on its training set)
    ├── AuthError                a feature store server refused the call's API key
    │                            (none sent, or not valid): FeatureStore.remote
    ├── StoreUnavailableError    the online or offline store cannot be reached
    │   └── BusyError            a server's engine slots stayed busy past their timeout
    ├── IntegrityError           a stored file no longer matches the hash recorded for it
    ├── JobError                 a materialization, backfill or stream job failed
    └── ModelError               a model cannot be saved, loaded or run (unpicklable
        │                        object, missing library, untrusted file)
        └── ArtifactError        a model's artifact file is missing or changed since it
                                 was stored (also an IntegrityError)

``StoreUnavailableError`` is not the user's fault but still names the URL and what to
check; the HTTP layer answers it with 503 (with the URL and paths only for a caller that
sent a valid API key: serving/disclosure.py).
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

__all__ = [
    "ArtifactError",
    "AuthError",
    "BusyError",
    "ConfigError",
    "ConflictError",
    "DefinitionError",
    "FeatureStoreError",
    "InUseError",
    "InputError",
    "IntegrityError",
    "JobError",
    "MissingFeatureError",
    "ModelError",
    "NotFoundError",
    "Problems",
    "RegistryError",
    "SchemaError",
    "StoreUnavailableError",
    "close_matches",
]


class FeatureStoreError(Exception):
    """Base class of every error meant for the user."""


class ConfigError(FeatureStoreError):
    """featurestore.yaml or an environment override is invalid."""


class DefinitionError(FeatureStoreError):
    """A feature definition is invalid, or a definitions module failed to import."""


class NotFoundError(FeatureStoreError):
    """A named object does not exist; the message lists close matches."""

    def __init__(self, kind: str, name: str, known: Iterable[str] = (), hint: str = "", where: str = ""):
        self.kind, self.name = kind, name
        matches = close_matches(name, known)
        message = f"unknown {kind} {name!r}" + (f" in {where}" if where else "")
        if matches:
            message += f"; did you mean {', '.join(repr(m) for m in matches)}?"
        elif hint:
            message += f"; {hint}"
        super().__init__(message)


class SchemaError(FeatureStoreError):
    """A column is missing or its type does not match the declared one."""


class InputError(FeatureStoreError):
    """Request data (entity rows, pushed rows, arguments) is malformed."""


class MissingFeatureError(InputError):
    """A model version with ``on_missing="error"`` met a missing input feature.

    ``model`` (its URI), ``feature``, ``entity`` (join key -> value of the first row
    concerned), ``status`` (why it is missing) and ``rows`` (how many rows miss it) let a
    caller act on it; the HTTP layer answers 422 like every InputError."""

    def __init__(self, model: str, feature: str, entity: dict, status: str, rows: int = 1):
        self.model, self.feature, self.entity, self.status, self.rows = model, feature, entity, status, rows
        key = ", ".join(f"{k}={v!r}" for k, v in entity.items()) or "an entity"
        more = f" (and {rows - 1} more row{'s' if rows > 2 else ''})" if rows > 1 else ""
        super().__init__(
            f"model {model}: input feature {feature!r} is missing ({status}) for {key}{more}; its on_missing "
            "policy is 'error': materialize or push the feature, or register a version with on_missing='null' "
            "or 'default'"
        )


class RegistryError(FeatureStoreError):
    """The registry cannot be read or written."""


class ConflictError(RegistryError):
    """Another writer changed the registry concurrently; retry the operation."""


class InUseError(FeatureStoreError):
    """An object cannot be removed or changed while another one depends on it."""


class AuthError(FeatureStoreError):
    """A feature store server refused the call: no API key, or one it does not know."""


class StoreUnavailableError(FeatureStoreError):
    """The online or offline store cannot be reached.

    ``store`` names it without locating it ("the online store", "the offline store"): an
    HTTP caller without an API key sees only that, never the message's paths or hosts."""

    def __init__(self, message: str = "", *, store: str = "the online store"):
        super().__init__(message)
        self.store = store


class BusyError(StoreUnavailableError):
    """Every engine slot of a server stayed busy past its timeout; the message names only
    the settings (nothing to hide from a caller without a key)."""


class IntegrityError(FeatureStoreError):
    """A stored file (a saved dataset version) is missing or no longer matches its sha256."""


class JobError(FeatureStoreError):
    """A materialization, backfill or stream job failed."""


class ModelError(FeatureStoreError):
    """A model cannot be saved, loaded or run: an unpicklable object, a missing library."""


class ArtifactError(ModelError, IntegrityError):
    """A model's artifact file is missing, or its content changed since it was stored.

    Also an ``IntegrityError``: a changed stored file is one concept, for datasets and
    model artifacts alike.
    """


def close_matches(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    """The known names closest to ``name``, best first (for 'did you mean' hints)."""
    known = list(known)
    matches = difflib.get_close_matches(name, known, n=n, cutoff=0.6)
    if not matches:
        # A bare feature name often matches the part after "view:" of a reference.
        matches = [k for k in known if k.split(":")[-1] == name.split(":")[-1]][:n]
    return matches


class Problems:
    """User errors gathered over a whole run (every module and object of a repo), so one
    ``plan`` shows them all; ``raise_any`` raises one unchanged, several as one list."""

    def __init__(self) -> None:
        self.errors: list[FeatureStoreError] = []

    @contextmanager
    def each(self) -> Iterator[None]:
        try:
            yield
        except FeatureStoreError as exc:
            self.errors.append(exc)

    def raise_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            # Numbered, so the list reads well on one line too (the CLI joins lines).
            listed = "\n".join(f"  [{i}] {e}" for i, e in enumerate(self.errors, 1))
            message = f"{len(self.errors)} problems in the repo (nothing was changed); fix each:\n{listed}"
            kinds = {type(e) for e in self.errors}
            # Several errors of one kind keep that kind (a SchemaError stays one for callers).
            combined = copy.copy(self.errors[0]) if len(kinds) == 1 else DefinitionError()
            combined.args = (message,)
            raise combined
