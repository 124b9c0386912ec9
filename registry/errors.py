"""Errors raised by the registry.

The tree::

    RegistryError            the registry cannot be opened, read or written, or was
    │                        given an invalid object; the message names the file or URL
    ├── ConflictError        another writer changed the project since the revision the
    │                        caller expected; re-plan and apply again
    └── InUseError           an object cannot be removed while an object of a pinning
                             kind (a model version, say) depends on it

``registry`` knows nothing about ``featurestore``; the feature store translates these
into its own error types at its seam.
"""

from __future__ import annotations

__all__ = ["ConflictError", "InUseError", "RegistryError"]


class RegistryError(Exception):
    """The registry cannot be opened, read or written, or an input is invalid."""


class ConflictError(RegistryError):
    """The project's revision is not the one the caller expected."""


class InUseError(RegistryError):
    """An object cannot be removed while an object that pins it depends on it."""
