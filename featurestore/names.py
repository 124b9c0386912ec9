"""The one rule for names a user gives that become file or folder names and registry or
Redis keys: saved datasets (``datasets/<name>/``), push sources (``pushed/<name>/``),
feature views, entities, services and fields.

A name is 1 to ``MAX_NAME_LENGTH`` ASCII letters, digits, ``_``, ``-`` and ``.``, starting
with a letter or a digit. So it is a valid file name on every file system (no separator,
no NUL, no ``..``, not hidden, far below the 255-byte limit of a file name), it reads the
same in a shell, a URL path and a log line, and a blank or odd-looking name is refused
before anything is written. Definitions are stricter still: Python identifiers (no ``-``
or ``.``), since features are referred to as ``view:feature`` and ``view__feature``.
"""

from __future__ import annotations

import re

from featurestore.errors import FeatureStoreError, InputError

__all__ = ["MAX_NAME_LENGTH", "check_name"]

MAX_NAME_LENGTH = 128

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_name(what: str, name: object, *, identifier: bool = False,
               error: type[FeatureStoreError] = InputError, hint: str = "") -> str:
    """``name`` when it follows the rule (``identifier``: a Python identifier too), else
    ``error`` naming ``what``, the name and the rule. ``hint`` says why the rule matters."""
    pattern = _IDENTIFIER if identifier else _NAME
    if isinstance(name, str) and len(name) <= MAX_NAME_LENGTH and pattern.fullmatch(name):
        return name
    shown = repr(name) if not isinstance(name, str) or len(name) <= 60 else f"{name[:40]!r}... ({len(name)} characters)"
    rule = ("letters, digits and underscores, not starting with a digit" if identifier else
            "letters, digits, '_', '-' and '.', starting with a letter or a digit")
    raise error(f"{what} {shown} is not valid; use {rule}, at most {MAX_NAME_LENGTH} characters"
                + (f" ({hint})" if hint else ""))
