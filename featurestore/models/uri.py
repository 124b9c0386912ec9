"""Model URIs: how every API, command and endpoint names a model version.

- ``churn/3``        version 3 of model ``churn``;
- ``churn@champion`` the version alias ``champion`` of ``churn`` points at now;
- ``churn``          the same as ``churn@champion`` (``DEFAULT_ALIAS``), so a server
                     configured with a bare name follows the alias as it moves.

Model names are letters, digits, ``_``, ``-`` and ``.`` (no ``/`` or ``@``, which the
URI uses). Alias names start with a letter or ``_`` so that ``churn@3`` can never be
mistaken for a version number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from featurestore.errors import InputError
from featurestore.names import check_name

__all__ = ["DEFAULT_ALIAS", "ModelURI", "check_alias", "check_model_name", "parse_uri"]

DEFAULT_ALIAS = "champion"

_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_FORMS = "'name/3', 'name@alias' or 'name'"


@dataclass(frozen=True)
class ModelURI:
    """A parsed URI: exactly one of ``version`` and ``alias`` is set."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        return f"{self.name}/{self.version}" if self.version is not None else f"{self.name}@{self.alias}"


def check_model_name(name: object) -> str:
    """``name`` when it follows featurestore.names' rule (which has no '/' or '@'); InputError otherwise."""
    return check_name("model name", name, hint="'/' and '@' separate a version or an alias in a model URI")


def check_alias(alias: object) -> str:
    """``alias`` when it is a valid alias name; InputError otherwise."""
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias) or len(alias) > 100:
        raise InputError(
            f"alias {alias!r} is not valid: use letters, digits, '_' and '-', starting with a letter or '_' "
            "(e.g. champion, challenger)"
        )
    return alias


def parse_uri(uri: object) -> ModelURI:
    """Parse ``name/3``, ``name@alias`` or ``name``; InputError naming the accepted forms."""
    if isinstance(uri, ModelURI):
        return uri
    if not isinstance(uri, str) or not uri.strip():
        raise InputError(f"model URI {uri!r} is not valid; use {_FORMS}")
    text = uri.strip()
    try:
        if "/" in text:
            name, _, number = text.partition("/")
            if not number.isdigit() or int(number) < 1:
                raise InputError(
                    f"model URI {uri!r}: {number!r} is not a version number (versions count from 1); "
                    f"use {_FORMS}"
                )
            return ModelURI(check_model_name(name), version=int(number))
        if "@" in text:
            name, _, alias = text.partition("@")
            return ModelURI(check_model_name(name), alias=check_alias(alias))
        return ModelURI(check_model_name(text), alias=DEFAULT_ALIAS)
    except InputError as exc:
        if str(exc).startswith("model URI"):
            raise
        raise InputError(f"model URI {uri!r} is not valid: {exc}") from None
