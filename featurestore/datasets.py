"""Saved datasets: training sets kept as immutable versions, each in a file of its own.

``job.save(name)`` writes the rows to ``{offline_store}/datasets/<name>/<sha256>.parquet``,
a file named by the sha256 of its bytes (so no later save can change it), and records a
new version of the registry object ``saved_dataset/<name>`` whose spec holds that path
and hash. Every version points at its own rows; saving the same rows again points at
the same file. ``SavedDataset.to_arrow`` reads a version back and refuses the file
(``IntegrityError``, naming the version) unless its bytes still hash to the recorded
sha256, so a model trained on a dataset version can be sure of the rows it saw.

The recorded path is relative to the offline store (``datasets/<name>/<sha256>.parquet``):
records go to clients (over HTTP and Flight), which have no business knowing the server's
folders, and the server resolves it against its own offline store. Versions recorded
before then hold an absolute path; they read as before and are shown relative too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.catalog import Catalog
from featurestore.errors import InputError, IntegrityError, NotFoundError, StoreUnavailableError
from featurestore.names import check_name
from featurestore.offline.files import write_parquet_by_content
from featurestore.retrieval import dataset_spec

if TYPE_CHECKING:
    import pandas

    from featurestore.retrieval import RetrievalJob

__all__ = ["KIND", "SavedDataset", "delete_saved_dataset", "get_saved_dataset", "list_saved_datasets", "save_dataset",
           "shown_path"]

#: The registry kind of a saved dataset's versions.
KIND = "saved_dataset"


@dataclass(frozen=True)
class SavedDataset:
    """One version of a saved training set: its registry record, and its rows on demand.

    ``spec`` holds ``path`` (relative to the offline store), ``sha256``, ``rows``,
    ``features``, ``feature_view_versions``, ``entity_fingerprint``, ``entity_rows``,
    ``timestamp_column``, ``known_at_timestamp`` and ``created_at``. ``offline_root``: the
    offline store folder the path is relative to (the server's; None on a client).
    """

    name: str
    version: int
    spec: dict[str, Any]
    offline_root: Path | None = field(default=None, repr=False, compare=False)

    @property
    def path(self) -> Path:
        """The file on this machine: the recorded path resolved against the offline store
        (an absolute path, recorded by an older version, stays as it is)."""
        recorded = Path(self.spec["path"])
        return self.offline_root / recorded if self.offline_root is not None else recorded

    @property
    def shown_path(self) -> str:
        """The path as clients see it: relative to the offline store, never the server's folders."""
        return shown_path(self.spec["path"], self.offline_root)

    @property
    def sha256(self) -> str | None:
        """None for a version saved before datasets were hashed."""
        return self.spec.get("sha256")

    def to_dict(self) -> dict:
        """``{"name", "version", **spec}``: what ``save`` and ``list_saved_datasets`` return."""
        return {"name": self.name, "version": self.version, **self.spec, "path": self.shown_path}

    def to_arrow(self) -> pa.Table:
        """The rows, once the file is checked to hold the bytes this version recorded."""
        return pq.read_table(pa.BufferReader(self._verified_bytes()))

    def to_pandas(self) -> "pandas.DataFrame":
        return self.to_arrow().to_pandas()

    def _verified_bytes(self) -> bytes:
        # Hash the very bytes that are parsed, so a write between check and read cannot
        # slip through.
        what = f"saved dataset {self.name!r} version {self.version}"
        if self.sha256 is None:
            raise IntegrityError(
                f"{what} was saved before datasets recorded a sha256, so its file {self.shown_path} cannot be "
                "checked (a later save of the same name may have rewritten it); save the dataset again"
            )
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            raise IntegrityError(
                f"{what}: its file {self.shown_path} (in the offline store) is missing; restore it from a "
                "backup or save the dataset again"
            ) from None
        except OSError as exc:
            raise StoreUnavailableError(f"{what}: cannot read {self.shown_path} ({exc.strerror}); check the "
                                        "offline store folder and its permissions", store="the offline store") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != self.sha256:
            raise IntegrityError(
                f"{what}: its file {self.shown_path} changed after it was saved (sha256 {actual[:12]}..., recorded "
                f"{self.sha256[:12]}...); restore it from a backup or save the dataset again as a new version"
            )
        return data


def save_dataset(catalog: Catalog, project: str, offline_root: Path, name: str, job: RetrievalJob) -> SavedDataset:
    """Write the job's rows as a new immutable file and record them as a new version."""
    _check_name(name)
    table = job.to_arrow()
    path, sha256 = write_parquet_by_content(table, offline_root / "datasets" / name,
                                            what=f"the offline store (folder datasets/{name})")
    versions = {}
    for view in dict.fromkeys(ref.split(":")[0] for ref in job.feature_refs):
        stored = catalog.get(project, "feature_view", view)
        versions[view] = stored.version if stored else None
    stored = catalog.put(project, dataset_spec(job, name, path.relative_to(offline_root), table.num_rows, versions,
                                               sha256))
    return SavedDataset(stored.name, stored.version, stored.spec, offline_root)


def get_saved_dataset(catalog: Catalog, project: str, name: str, version: int | None = None,
                      offline_root: Path | None = None) -> SavedDataset:
    """One version of a saved dataset, the latest by default; ``offline_root`` resolves its file."""
    stored = catalog.get(project, KIND, name, version)
    if stored is None or stored.removed:
        history = catalog.history(project, KIND, name)
        if not history:
            known = [o.name for o in catalog.list(project, KIND)]
            raise NotFoundError("saved dataset", name, known,
                                hint="`store.get_historical_features(...).save(name)` saves one")
        versions = ", ".join(str(o.version) for o in history if not o.removed)
        raise NotFoundError(f"saved dataset {name!r} version", str(version), hint=f"it has versions {versions}")
    return SavedDataset(stored.name, stored.version, stored.spec, offline_root)


def list_saved_datasets(catalog: Catalog, project: str, offline_root: Path | None = None) -> list[dict]:
    """The latest version of each saved dataset, as ``SavedDataset.to_dict`` gives it."""
    return [SavedDataset(o.name, o.version, o.spec, offline_root).to_dict() for o in catalog.list(project, KIND)]


def shown_path(recorded: str, offline_root: Path | None) -> str:
    """A recorded dataset path as a client may see it: as recorded when relative; an older
    absolute one relative to the offline store, or its file name when it lies elsewhere."""
    path = PurePath(recorded)
    if not path.is_absolute():
        return path.as_posix()
    if offline_root is not None and path.is_relative_to(offline_root):
        return path.relative_to(offline_root).as_posix()
    return path.name


def delete_saved_dataset(catalog: Catalog, project: str, name: str, pinned_by: tuple[str, ...]) -> SavedDataset:
    """Remove a saved dataset from the registry: its versions stay in its history and its
    files stay (another version or name may hold the same rows). Refused (InUseError,
    nothing changed) while an object of a ``pinned_by`` kind, a model version, depends on it."""
    current = get_saved_dataset(catalog, project, name)
    catalog.remove(project, KIND, name, pinned_by=pinned_by)
    return current


def _check_name(name: object) -> None:
    check_name("saved dataset name", name, hint="it names the folder datasets/<name>/")
