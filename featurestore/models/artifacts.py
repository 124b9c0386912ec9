"""Content-addressed artifact storage for model files.

A model version's files are stored once and named by what they hold, so a version can
never silently change under its registry entry. The layout of a ``LocalArtifactStore``::

    <root>/objects/ab/cdef...      one file's bytes, named by its sha256 (read-only)
    <root>/objects/12/3456...      a manifest: canonical JSON {relative path: file sha256}
    <root>/checkouts/<hex>/...     a manifest's files laid out as a folder, for loading

``put`` returns ``"sha256:<hex>"`` of the manifest: the same files give the same digest.
An object is written under a temporary name, flushed, then linked into place only if
absent, so a reader never sees half an object and an existing one is never overwritten.
``fetch`` hashes every object it hands out: a file that is missing or changed since it
was stored raises ``ArtifactError`` naming the caller's label ("model fraud version 3")
and the file, instead of loading something other than what was registered.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Protocol

from featurestore.errors import ArtifactError, ConfigError
from featurestore.offline.files import fsync_dir, sha256_file

__all__ = ["ArtifactStore", "LocalArtifactStore", "artifact_store"]

_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")
_CHUNK = 1 << 20


class ArtifactStore(Protocol):
    """Where model files live; an object store can implement the same two methods."""

    def put(self, folder: Path) -> str:
        """Store every file under ``folder``; returns ``"sha256:<hex>"`` of its manifest."""
        ...

    def fetch(self, digest: str, *, label: str) -> Path:
        """A local folder with the manifest's files, each verified; ``ArtifactError`` if not."""
        ...


class LocalArtifactStore:
    """An ``ArtifactStore`` in a folder (created on the first ``put``)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalArtifactStore({str(self.root)!r})"

    def put(self, folder: Path) -> str:
        folder = Path(folder)
        if not folder.is_dir():
            raise ArtifactError(f"cannot store {folder}: not a folder")
        manifest = {}
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            manifest[path.relative_to(folder).as_posix()] = self._put_file(path)
        body = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        return "sha256:" + self._put_bytes(body)

    def fetch(self, digest: str, *, label: str) -> Path:
        match = _DIGEST.match(digest or "")
        if not match:
            raise ArtifactError(f"{label}: {digest!r} is not an artifact digest ('sha256:' and 64 hex digits)")
        manifest = self._read_manifest(match.group(1), label)
        for rel, sha in manifest.items():
            self._verify(rel, sha, label)
        return self._checkout(match.group(1), manifest)

    # -- objects ---------------------------------------------------------------------

    def _object(self, sha: str) -> Path:
        return self.root / "objects" / sha[:2] / sha[2:]

    def _put_file(self, path: Path) -> str:
        sha = sha256_file(path)
        if not self._object(sha).exists():
            with path.open("rb") as source:
                self._write_object(sha, lambda out: shutil.copyfileobj(source, out, _CHUNK))
        return sha

    def _put_bytes(self, body: bytes) -> str:
        sha = hashlib.sha256(body).hexdigest()
        if not self._object(sha).exists():
            self._write_object(sha, lambda out: out.write(body))
        return sha

    def _write_object(self, sha: str, write) -> None:
        target = self._object(sha)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:16]}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o444)  # objects are immutable; a casual write should fail
            try:
                # link() refuses an existing name, so a concurrent writer of the same
                # content wins and nothing is ever overwritten.
                os.link(tmp, target)
            except FileExistsError:
                pass
            except OSError:  # no hard links on this filesystem
                if not target.exists():
                    os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        fsync_dir(target.parent)

    def _read_manifest(self, sha: str, label: str) -> dict[str, str]:
        path = self._object(sha)
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactError(f"{label}: artifact sha256:{sha} is missing from {self.root}") from None
        if hashlib.sha256(body).hexdigest() != sha:
            raise ArtifactError(f"{label}: the manifest of artifact sha256:{sha} changed since it was stored")
        manifest = json.loads(body)
        for rel in manifest:
            parts = PurePosixPath(rel).parts
            if rel.startswith("/") or ".." in parts or not parts:
                raise ArtifactError(f"{label}: artifact sha256:{sha} names an unsafe path {rel!r}")
        return manifest

    def _verify(self, rel: str, sha: str, label: str) -> None:
        path = self._object(sha)
        if not path.is_file():
            raise ArtifactError(f"{label}: file {rel!r} is missing from the artifact store ({path})")
        found = sha256_file(path)
        if found != sha:
            raise ArtifactError(
                f"{label}: file {rel!r} changed since it was stored (sha256 {found[:12]}..., "
                f"expected {sha[:12]}...); re-register the model from its source"
            )

    # -- checkouts -------------------------------------------------------------------

    def _checkout(self, sha: str, manifest: dict[str, str]) -> Path:
        """The manifest's files as a folder, hard-linked to their (verified) objects.

        An existing checkout is reused only when it holds exactly the manifest's files and
        each one is its object (same inode) or has its content; otherwise a fresh one is
        built beside it and renamed into place, so a loader never sees a partial folder.
        """
        folder = self.root / "checkouts" / sha
        if self._checkout_ok(folder, manifest):
            return folder
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{sha[:16]}.", dir=folder.parent))
        try:
            for rel, file_sha in manifest.items():
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(self._object(file_sha), target)
                except OSError:
                    shutil.copyfile(self._object(file_sha), target)
            if folder.exists():
                stale = folder.with_name(f".{sha[:16]}.stale.{os.getpid()}")
                os.replace(folder, stale)
                shutil.rmtree(stale, ignore_errors=True)
            try:
                os.replace(tmp, folder)
            except OSError:  # a concurrent fetch put its own checkout there first
                if not self._checkout_ok(folder, manifest):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return folder

    def _checkout_ok(self, folder: Path, manifest: dict[str, str]) -> bool:
        if not folder.is_dir():
            return False
        present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
        if present != set(manifest):
            return False
        for rel, sha in manifest.items():
            path = folder / rel
            if not (path.samefile(self._object(sha)) or sha256_file(path) == sha):
                return False
        return True


def artifact_store(location: str | os.PathLike[str]) -> ArtifactStore:
    """The artifact store at ``location``: a folder path (or ``file://`` URL) today.

    A relative path is taken as it is; the caller resolves it against the repo first.
    """
    text = os.fspath(location)
    if text.startswith("file://"):
        text = text[len("file://"):]
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise ConfigError(f"artifact store {text!r}: the {scheme}:// scheme is not supported yet; use a folder path")
    if not text:
        raise ConfigError("artifact store location is empty; use a folder path")
    return LocalArtifactStore(text)


