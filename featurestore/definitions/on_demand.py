"""Request-time features: ``RequestSource`` and ``on_demand_feature_view`` (Feast's names).

An on-demand feature view is a transform over one table: the features of its source
views (by feature name) and the fields of its request sources (by field name), one row
per entity row. The decorator only builds the frozen ``OnDemandFeatureView`` below (a
user could build it by hand); running it lives in ``featurestore/transforms.py``, which
``get_historical_features`` and online reads share, so both compute the same values.

Modes (the function's input and output):
- ``"pandas"`` (Feast's default): a ``pandas.DataFrame`` in, a DataFrame out;
- ``"arrow"``: a ``pyarrow.Table`` in, a ``pyarrow.Table`` out (no pandas on the path);
- ``"python"``: a dict of column name -> list in, a dict of column name -> list out.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from featurestore.definitions.entity import Field, _check_name
from featurestore.definitions.feature_view import FeatureView, FeatureViewProjection
from featurestore.errors import DefinitionError, NotFoundError

__all__ = ["MODES", "OnDemandFeatureView", "RequestSource", "on_demand_feature_view"]

MODES = ("pandas", "arrow", "python")


@dataclass(frozen=True)
class RequestSource:
    """Values a caller sends with each request (``RequestSource("trip", schema=[Field(...)])``)."""

    name: str
    schema: tuple[Field, ...]
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    owner: str = ""

    def __post_init__(self) -> None:
        _check_name("request source", self.name)
        schema = tuple(self.schema or ())
        if not schema or not all(isinstance(f, Field) for f in schema):
            raise DefinitionError(f"request source {self.name!r}: schema must be a non-empty list of Field objects")
        object.__setattr__(self, "schema", schema)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.schema)


@dataclass(frozen=True)
class OnDemandFeatureView:
    """Features computed at request time by ``udf`` from ``sources``; see the module doc.

    ``udf_module``/``udf_qualname`` say where a server imports the function from (the
    repo folder, like other definitions); ``udf_source`` is its text, kept in the
    registry for review and lineage. ``udf`` itself is not compared or stored.
    """

    name: str
    sources: tuple[FeatureViewProjection | RequestSource, ...]
    schema: tuple[Field, ...]
    udf: Callable[[Any], Any] | None = field(default=None, compare=False, hash=False, repr=False)
    mode: str = "pandas"
    udf_module: str = ""
    udf_qualname: str = ""
    udf_source: str = ""
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    owner: str = ""

    def __post_init__(self) -> None:
        _check_name("on-demand feature view", self.name)
        where = f"on-demand feature view {self.name!r}"
        if self.mode not in MODES:
            raise DefinitionError(f"{where}: mode {self.mode!r} is not supported; use one of {', '.join(MODES)}")
        sources = []
        for item in self.sources or ():
            if isinstance(item, FeatureView):
                item = FeatureViewProjection(item, item.feature_names)
            if not isinstance(item, (FeatureViewProjection, RequestSource)):
                raise DefinitionError(f"{where}: sources must be feature views, view[[...]] projections or "
                                      f"RequestSources, not {type(item).__name__}")
            sources.append(item)
        if not sources:
            raise DefinitionError(f"{where} has no sources; list its feature views and request sources")
        object.__setattr__(self, "sources", tuple(sources))
        seen: dict[str, str] = {}
        for source in sources:
            for column in self._columns_of(source):
                if column in seen:
                    raise DefinitionError(f"{where}: input column {column!r} comes from both {seen[column]!r} "
                                          f"and {source.name!r}; project one of them away with view[[...]]")
                seen[column] = source.name
        schema = tuple(self.schema or ())
        if not schema or not all(isinstance(f, Field) for f in schema):
            raise DefinitionError(f"{where}: schema must be a non-empty list of Field objects (its outputs)")
        names = [f.name for f in schema]
        if len(set(names)) != len(names):
            raise DefinitionError(f"{where} declares an output column twice: {names}")
        object.__setattr__(self, "schema", schema)
        if self.udf is not None and not callable(self.udf):
            raise DefinitionError(f"{where}: udf must be a function, not {type(self.udf).__name__}")

    @staticmethod
    def _columns_of(source: FeatureViewProjection | RequestSource) -> tuple[str, ...]:
        return source.field_names if isinstance(source, RequestSource) else source.features

    @property
    def view_sources(self) -> tuple[FeatureViewProjection, ...]:
        return tuple(s for s in self.sources if isinstance(s, FeatureViewProjection))

    @property
    def request_sources(self) -> tuple[RequestSource, ...]:
        return tuple(s for s in self.sources if isinstance(s, RequestSource))

    @property
    def features(self) -> tuple[Field, ...]:
        return self.schema

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.schema)

    def __getitem__(self, names: list[str] | tuple[str, ...]) -> FeatureViewProjection:
        """``odfv[["a"]]``: a projection for a FeatureService."""
        if isinstance(names, str):
            names = [names]
        for name in names:
            if name not in self.feature_names:
                raise NotFoundError("feature", name, self.feature_names, where=f"on-demand feature view {self.name!r}")
        return FeatureViewProjection(self, tuple(names))  # type: ignore[arg-type]


def on_demand_feature_view(
    *,
    sources: list,
    schema: list[Field],
    mode: str = "pandas",
    name: str = "",
    description: str = "",
    tags: dict[str, str] | None = None,
    owner: str = "",
) -> Callable[[Callable[[Any], Any]], OnDemandFeatureView]:
    """``@on_demand_feature_view(sources=[view, request], schema=[Field("out", Float64)])``
    over ``def name(inputs): return outputs``; the view is named after the function."""

    def build(function: Callable[[Any], Any]) -> OnDemandFeatureView:
        try:
            text = inspect.getsource(function)
        except (OSError, TypeError):
            text = ""
        return OnDemandFeatureView(
            name=name or function.__name__, sources=tuple(sources), schema=tuple(schema), udf=function,
            mode=mode, udf_module=function.__module__, udf_qualname=function.__qualname__, udf_source=text,
            description=description or (inspect.getdoc(function) or ""), tags=dict(tags or {}), owner=owner,
        )

    return build
