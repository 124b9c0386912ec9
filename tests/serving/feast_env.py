"""The real Feast SDK, pinned, in a virtualenv of its own (``.venv-feast`` at the repo root),
so its many dependencies never enter ours. Built once and reused between runs; rebuilt
when the pin changes. Offline (no index to install from) the tests skip, except in CI
(``CI=true``), where a missing SDK is a failure. ``python tests/serving/feast_env.py``
builds it ahead (.ci/run does, alongside its own install)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

__all__ = ["FEAST_VERSION", "feast_python"]

FEAST_VERSION = "0.67.0"
ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-feast"
# Held while building: in the temp folder, not in the virtualenv (a build clears it) nor the checkout.
_LOCK = Path(tempfile.gettempdir()) / f"featurestore-feast-{hashlib.sha256(str(VENV).encode()).hexdigest()[:16]}.lock"


def _python() -> Path:
    return VENV / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def _installed() -> bool:
    if not _python().exists():
        return False
    # The installed version, without importing feast (which takes ten seconds or more).
    probe = subprocess.run([str(_python()), "-c", "from importlib.metadata import version; print(version('feast'))"],
                           capture_output=True, text=True)
    return probe.returncode == 0 and probe.stdout.strip() == FEAST_VERSION


def build() -> str | None:
    """Install Feast into the virtualenv unless it is there already: None, or why it failed.
    One process at a time (the suite's two xdist workers may both need it): the second
    waits for the first's build and finds it done."""
    if _installed():
        return None
    with open(_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return None if _installed() else _install()


def _install() -> str | None:
    venv.create(VENV, with_pip=True, clear=True)
    # About a minute or two on a fresh machine (pandas, pyarrow, protobuf, ...); later runs reuse it.
    install = subprocess.run([str(_python()), "-m", "pip", "install", "-q", f"feast=={FEAST_VERSION}"],
                             capture_output=True, text=True)
    if install.returncode != 0 or not _installed():
        return f"could not install feast=={FEAST_VERSION} into {VENV}: {install.stderr.strip()[-800:]}"
    return None


def feast_python() -> Path:
    """The interpreter of the Feast virtualenv, installing Feast there first if needed."""
    import pytest

    reason = build()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return _python()


if __name__ == "__main__":
    failed = build()
    if failed:
        sys.exit(failed)
