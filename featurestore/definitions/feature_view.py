"""Feature views: a group of features of some entities, read from one source."""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field
from datetime import timedelta

from featurestore.definitions.entity import Entity, Field, _check_name
from featurestore.definitions.sources import FileSource, PushSource
from featurestore.errors import DefinitionError, NotFoundError

__all__ = ["AGGREGATION_FUNCTIONS", "Aggregation", "FeatureView", "FeatureViewProjection", "format_window"]

AGGREGATION_FUNCTIONS = ("sum", "count", "mean", "min", "max", "last")


def format_window(window: timedelta) -> str:
    """A compact window label for feature names: 10m, 1h, 1h30m, 7d, 45s."""
    seconds = int(window.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


@dataclass(frozen=True)
class Aggregation:
    """A windowed aggregation over ``(T - time_window, T]``, identical in batch and streaming.

    Its feature is named ``{column}_{function}_{window}`` (``fare_sum_10m``) unless
    ``name`` is given.
    """

    column: str
    function: str
    time_window: timedelta
    name: str = ""

    def __post_init__(self) -> None:
        if self.function not in AGGREGATION_FUNCTIONS:
            raise DefinitionError(
                f"aggregation of {self.column!r}: function {self.function!r} is not supported; "
                f"use one of {', '.join(AGGREGATION_FUNCTIONS)}"
            )
        if not isinstance(self.time_window, timedelta) or self.time_window.total_seconds() < 1:
            raise DefinitionError(
                f"aggregation {self.column!r}/{self.function}: time_window must be a timedelta "
                f"of at least one second, not {self.time_window!r}"
            )
        if self.time_window.total_seconds() != int(self.time_window.total_seconds()):
            raise DefinitionError(f"aggregation {self.column!r}: time_window must be whole seconds")
        if not self.name:
            object.__setattr__(self, "name", f"{self.column}_{self.function}_{format_window(self.time_window)}")
        _check_name("aggregation output", self.name)


@dataclass(frozen=True)
class FeatureView:
    """Features of ``entities`` read from ``source``, valid for ``ttl`` after their event time.

    ``schema`` lists the feature columns (join key columns may be listed too; they are not
    features). With ``aggregations`` the view is over raw events and its features are the
    aggregations' outputs. ``schedule`` (a cron string or a timedelta) asks the scheduler
    to materialize it incrementally.
    """

    name: str
    entities: tuple[Entity, ...]
    schema: tuple[Field, ...]
    source: FileSource | PushSource
    ttl: timedelta | None = None
    online: bool = True
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    owner: str = ""
    description: str = ""
    aggregations: tuple[Aggregation, ...] = ()
    schedule: str | timedelta | None = None
    # Feast's options, accepted where they mean what Feast means (see _feast_options).
    enable_validation: InitVar[bool] = False
    version: InitVar[str | None] = None

    def __post_init__(self, enable_validation: bool, version: str | None) -> None:
        _check_name("feature view", self.name)
        _feast_options(self.name, enable_validation, version)
        entities = tuple(self.entities) if isinstance(self.entities, (list, tuple)) else (self.entities,)
        if not entities or not all(isinstance(e, Entity) for e in entities):
            raise DefinitionError(f"feature view {self.name!r}: entities must be a non-empty list of Entity objects")
        object.__setattr__(self, "entities", entities)
        self._check_ttl()
        if not isinstance(self.source, (FileSource, PushSource)):
            raise DefinitionError(
                f"feature view {self.name!r}: source must be a FileSource or PushSource, "
                f"not {type(self.source).__name__}"
            )
        schema = tuple(self.schema or ())
        if not all(isinstance(f, Field) for f in schema):
            raise DefinitionError(f"feature view {self.name!r}: schema must be a list of Field objects")
        _no_duplicates(self.name, "field", [f.name for f in schema])
        object.__setattr__(self, "schema", schema)
        object.__setattr__(self, "aggregations", tuple(self.aggregations or ()))
        self._check_aggregations()
        _no_duplicates(self.name, "join key", [k for e in entities for k in e.join_keys])
        if not self.features:
            raise DefinitionError(
                f"feature view {self.name!r} has no features: add Fields besides the join keys to its schema"
            )
        clash = {self.source.timestamp_field} & {f.name for f in self.features}
        if clash and not self.aggregations:
            raise DefinitionError(
                f"feature view {self.name!r}: {clash.pop()!r} is the source's timestamp field, not a feature"
            )
        if self.schedule is not None and not isinstance(self.schedule, (str, timedelta)):
            raise DefinitionError(
                f"feature view {self.name!r}: schedule must be a cron string like '0 * * * *' or a timedelta"
            )

    def _check_ttl(self) -> None:
        if self.ttl is None or self.ttl == 0:
            object.__setattr__(self, "ttl", None)
            return
        if not isinstance(self.ttl, timedelta):
            raise DefinitionError(
                f"feature view {self.name!r}: ttl must be a datetime.timedelta (or None for no limit), "
                f"not {type(self.ttl).__name__} {self.ttl!r}"
            )
        if self.ttl < timedelta(0):
            raise DefinitionError(f"feature view {self.name!r}: ttl must not be negative, got {self.ttl}")
        if self.ttl == timedelta(0):
            object.__setattr__(self, "ttl", None)

    def _check_aggregations(self) -> None:
        columns = {f.name for f in self.schema}
        for agg in self.aggregations:
            if not isinstance(agg, Aggregation):
                raise DefinitionError(f"feature view {self.name!r}: aggregations must be Aggregation objects")
            if agg.column not in columns:
                raise NotFoundError("aggregation column", agg.column, columns, where=f"the schema of feature view {self.name!r}")
        _no_duplicates(self.name, "aggregation output", [a.name for a in self.aggregations])

    @property
    def join_keys(self) -> tuple[str, ...]:
        return tuple(k for e in self.entities for k in e.join_keys)

    @property
    def batch_source(self) -> FileSource:
        return self.source.batch_source if isinstance(self.source, PushSource) else self.source

    @property
    def features(self) -> tuple[Field, ...]:
        """The view's features: aggregation outputs, or the schema minus the join keys."""
        if self.aggregations:
            from featurestore.types import Float64, Int64

            by_name = {f.name: f for f in self.schema}
            return tuple(
                Field(a.name, Int64 if a.function == "count" else
                      Float64 if a.function == "mean" else by_name[a.column].dtype)
                for a in self.aggregations
            )
        keys = set(self.join_keys)
        return tuple(f for f in self.schema if f.name not in keys)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def __getitem__(self, names: list[str] | tuple[str, ...]) -> FeatureViewProjection:
        """``view[["a", "b"]]``: a projection for a FeatureService."""
        if isinstance(names, str):
            names = [names]
        known = self.feature_names
        for name in names:
            if name not in known:
                raise NotFoundError("feature", name, known, where=f"view {self.name!r}")
        return FeatureViewProjection(self, tuple(names))


@dataclass(frozen=True)
class FeatureViewProjection:
    """Some of a view's features, as listed in a FeatureService."""

    view: FeatureView
    features: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.view.name


def _feast_options(view: str, enable_validation: bool, version: str | None) -> None:
    """Feast's ``enable_validation`` (check the data against the declared types when
    materializing) is what this store always does: apply checks each source column's type
    and every read checks the files (offline/conform.py). ``version="latest"`` is the only
    version there is."""
    if not isinstance(enable_validation, bool):
        raise DefinitionError(f"feature view {view!r}: enable_validation must be True or False")
    if version not in (None, "latest"):
        raise DefinitionError(
            f"feature view {view!r}: version={version!r} is not supported: a view has one live definition and "
            "the registry keeps every applied one as history; remove version= (or use version=\"latest\")"
        )


def _no_duplicates(view: str, what: str, names: list[str]) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise DefinitionError(f"feature view {view!r} declares {what} {name!r} twice; names must be unique")
        seen.add(name)
