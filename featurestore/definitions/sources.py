"""Data sources: where a feature view's rows come from."""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field

from featurestore.definitions.entity import _check_name
from featurestore.errors import DefinitionError

__all__ = ["FileSource", "PushSource"]

_FORMATS = ("parquet", "csv")


@dataclass(frozen=True)
class FileSource:
    """A Parquet file, a folder or glob of Parquet files, or a CSV file.

    ``path`` is absolute or relative to the repo root. ``timestamp_field`` holds each row's
    event time; ``created_timestamp_field`` (optional) breaks ties between rows with the
    same event time: the later-created row wins. ``date_partition`` names the hive
    partition folder holding each row's UTC event date (``date`` for a folder laid out as
    ``trips/date=2024-05-01/part-0.parquet``): training sets and materialization then read
    only the days they need. Hive partition columns are read as columns either way.
    """

    path: str
    timestamp_field: str = "event_timestamp"
    created_timestamp_field: str | None = None
    name: str = ""
    file_format: str = ""
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    owner: str = ""
    date_partition: str | None = None
    # Feast's spellings, accepted as aliases (see _feast_spellings).
    created_timestamp_column: InitVar[str | None] = None
    event_timestamp_column: InitVar[str | None] = None
    field_mapping: InitVar[dict | None] = None

    def __post_init__(self, created_timestamp_column: str | None, event_timestamp_column: str | None,
                      field_mapping: dict | None) -> None:
        self._feast_spellings(created_timestamp_column, event_timestamp_column, field_mapping)
        if not isinstance(self.path, str) or not self.path:
            raise DefinitionError(f"FileSource path must be a non-empty string, not {self.path!r}")
        if self.path.startswith("file://"):  # Feast repos spell local paths as URLs
            object.__setattr__(self, "path", self.path[len("file://"):])
        fmt = self.file_format or ("csv" if self.path.lower().endswith((".csv", ".csv.gz")) else "parquet")
        if fmt not in _FORMATS:
            raise DefinitionError(
                f"FileSource {self.path!r}: file_format {fmt!r} is not supported; use one of {_FORMATS}"
            )
        object.__setattr__(self, "file_format", fmt)
        if not self.name:
            stem = self.path.rstrip("/").rsplit("/", 1)[-1].split(".")[0].replace("*", "")
            object.__setattr__(self, "name", stem.replace("-", "_") or "source")
        for what in ("timestamp_field", "created_timestamp_field", "date_partition"):
            value = getattr(self, what)
            if value is not None and (not isinstance(value, str) or not value):
                raise DefinitionError(f"FileSource {self.name!r}: {what} must be a column name, not {value!r}")
        if self.created_timestamp_field == self.timestamp_field:
            raise DefinitionError(
                f"FileSource {self.name!r}: created_timestamp_field must differ from timestamp_field"
            )


    def _feast_spellings(self, created: str | None, event: str | None, mapping: dict | None) -> None:
        """Feast's ``created_timestamp_column`` and ``event_timestamp_column`` name our
        ``created_timestamp_field`` and ``timestamp_field``; ``field_mapping`` has no equivalent."""
        if mapping:
            raise DefinitionError(
                f"FileSource {self.path!r}: field_mapping is not supported; rename the columns in the data "
                "(or name the Fields after the data's columns)"
            )
        for feasts, ours, value in (("created_timestamp_column", "created_timestamp_field", created),
                                    ("event_timestamp_column", "timestamp_field", event)):
            if not value:
                continue
            given = getattr(self, ours)
            if given not in (None, "", value) and not (ours == "timestamp_field" and given == "event_timestamp"):
                raise DefinitionError(f"FileSource {self.path!r}: give {ours} or Feast's {feasts}, not both")
            object.__setattr__(self, ours, value)


@dataclass(frozen=True)
class PushSource:
    """Rows pushed by clients (``POST /push``, ``store.push``, a Redis Stream).

    Pushed rows go to the online store and, when asked, are appended to the offline store
    next to ``batch_source``, so training sets see them.
    """

    name: str
    batch_source: FileSource
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    owner: str = ""

    def __post_init__(self) -> None:
        _check_name("push source", self.name)
        if not isinstance(self.batch_source, FileSource):
            raise DefinitionError(
                f"push source {self.name!r}: batch_source must be a FileSource, not {type(self.batch_source).__name__}"
            )

    @property
    def timestamp_field(self) -> str:
        return self.batch_source.timestamp_field

    @property
    def created_timestamp_field(self) -> str | None:
        return self.batch_source.created_timestamp_field
