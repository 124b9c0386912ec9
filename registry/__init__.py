"""The metadata plane: a versioned catalog of JSON specs and their lineage.

``Registry.open(path_or_sqlite_url)`` gives a catalog kept in one SQLite file (WAL mode)
that the API server, scheduler and CLI may share. It knows nothing about the feature
store's objects: callers store each as an ``ObjectSpec`` (kind, name, JSON spec, the
objects it depends on) and get back ``StoredObject`` versions.
"""

from registry.errors import ConflictError, InUseError, RegistryError
from registry.records import ApplyResult, Change, Edge, ObjectSpec, StoredObject
from registry.store import Registry
from registry.transaction import Transaction

__all__ = [
    "ApplyResult",
    "Change",
    "ConflictError",
    "Edge",
    "InUseError",
    "ObjectSpec",
    "Registry",
    "RegistryError",
    "StoredObject",
    "Transaction",
]
