"""Feature references: ``"view:feature"`` strings or a FeatureService, resolved to views.

Resolution is shared by offline and online reads so both accept exactly the same input
and name unknown views and features with the same close-match hints. A reference may
name an on-demand feature view (``"odfv:feature"``): ``resolve_request`` then also asks
for the source view features it reads, under hidden output names when the caller did not
ask for them, and those columns are dropped once the transform has run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from featurestore.definitions import FeatureService, FeatureView, OnDemandFeatureView
from featurestore.errors import InputError, NotFoundError
from featurestore.repo import RepoContents

__all__ = ["HIDDEN_PREFIX", "Resolution", "ResolvedTransform", "ResolvedView", "resolve_features", "resolve_request"]

#: The output name prefix of a source feature read only as an on-demand view's input.
HIDDEN_PREFIX = "__odfv_input__"


@dataclass(frozen=True)
class ResolvedView:
    """One view and the features wanted from it, with their output column names."""

    view: FeatureView
    features: tuple[str, ...]
    output_names: tuple[str, ...]


@dataclass(frozen=True)
class ResolvedTransform:
    """One on-demand view, the outputs wanted from it and their column names; ``inputs``
    maps each input column it reads from a source view to that feature's output column."""

    odfv: OnDemandFeatureView
    features: tuple[str, ...]
    output_names: tuple[str, ...]
    inputs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Resolution:
    """The views to read (with the transforms' inputs), the transforms, and the hidden
    input columns to drop from the answer."""

    views: list[ResolvedView]
    transforms: tuple[ResolvedTransform, ...] = ()
    hidden: frozenset[str] = frozenset()


def resolve_features(
    contents: RepoContents,
    features: Sequence[str] | FeatureService | str,
    full_feature_names: bool = False,
) -> list[ResolvedView]:
    """The views to read for ``features``, on-demand views' sources included."""
    return resolve_request(contents, features, full_feature_names).views


def resolve_request(
    contents: RepoContents,
    features: Sequence[str] | FeatureService | str,
    full_feature_names: bool = False,
) -> Resolution:
    """Views in first-mention order, each with its requested features in request order,
    then the on-demand views in first-mention order. A reference given twice is refused
    (as Feast does): it would be one column anyway."""
    if isinstance(features, str) and ":" not in features:
        features = _service(contents, features)
    if isinstance(features, FeatureService):
        refs = features.feature_refs
    elif isinstance(features, str):
        refs = [features]
    else:
        refs = list(features)
    if not refs:
        raise InputError("no features requested; pass a list of 'view:feature' references or a feature service")

    wanted: dict[str, list[str]] = {}
    odfvs: dict[str, list[str]] = {}
    for ref in refs:
        if not isinstance(ref, str) or ref.count(":") != 1:
            raise InputError(f"feature reference {ref!r} must look like 'view_name:feature_name'")
        view_name, feature = ref.split(":")
        view = contents.feature_views.get(view_name) or contents.on_demand_feature_views.get(view_name)
        if view is None:
            raise NotFoundError("feature view", view_name, [*contents.feature_views, *contents.on_demand_feature_views],
                                hint="run `featurestore apply` after defining it")
        if feature not in view.feature_names:
            all_refs = [f"{view_name}:{f}" for f in view.feature_names]
            raise NotFoundError("feature", feature, [*view.feature_names, *all_refs], where=f"view {view_name!r}")
        names = (odfvs if isinstance(view, OnDemandFeatureView) else wanted).setdefault(view_name, [])
        if feature in names:
            raise InputError(f"feature {ref!r} is requested twice; list each feature once")
        names.append(feature)

    resolved = []
    seen_outputs: dict[str, str] = {}
    for view_name, names in wanted.items():
        outputs = _output_names(view_name, names, full_feature_names, seen_outputs)
        resolved.append(ResolvedView(contents.feature_views[view_name], tuple(names), outputs))
    if not odfvs:
        return Resolution(resolved)
    return _with_transforms(contents, resolved, odfvs, full_feature_names, seen_outputs)


def _output_names(view: str, features: list[str], full_feature_names: bool,
                  seen_outputs: dict[str, str]) -> tuple[str, ...]:
    """The output columns of ``view``'s features, claimed in ``seen_outputs`` (output -> view);
    InputError when another view already gave one of them."""
    outputs = tuple(f"{view}__{f}" if full_feature_names else f for f in features)
    for out in outputs:
        if out in seen_outputs:
            raise InputError(
                f"feature {out!r} is requested from both {seen_outputs[out]!r} and {view!r}; "
                "pass full_feature_names=True to name them view__feature"
            )
        seen_outputs[out] = view
    return outputs


def _with_transforms(contents: RepoContents, resolved: list[ResolvedView], odfvs: dict[str, list[str]],
                     full_feature_names: bool, seen_outputs: dict[str, str]) -> Resolution:
    columns = {(rv.view.name, f): out for rv in resolved for f, out in zip(rv.features, rv.output_names)}
    extra: dict[str, list[str]] = {}
    transforms = []
    for name, names in odfvs.items():
        odfv = contents.on_demand_feature_views[name]
        inputs = []
        for source in odfv.view_sources:
            for feature in source.features:
                if (source.name, feature) not in columns:
                    columns[(source.name, feature)] = f"{HIDDEN_PREFIX}{source.name}__{feature}"
                    extra.setdefault(source.name, []).append(feature)
                inputs.append((feature, columns[(source.name, feature)]))
        outputs = _output_names(name, names, full_feature_names, seen_outputs)
        transforms.append(ResolvedTransform(odfv, tuple(names), outputs, tuple(inputs)))
    hidden = []
    for i, rv in enumerate(resolved):
        more = extra.pop(rv.view.name, [])
        if more:
            outs = tuple(columns[(rv.view.name, f)] for f in more)
            hidden += outs
            resolved[i] = ResolvedView(rv.view, rv.features + tuple(more), rv.output_names + outs)
    for view_name, more in extra.items():
        view = contents.feature_views.get(view_name)
        if view is None:
            raise NotFoundError("feature view", view_name, contents.feature_views,
                                hint="an on-demand view reads it; apply the view too")
        outs = tuple(columns[(view_name, f)] for f in more)
        hidden += outs
        resolved.append(ResolvedView(view, tuple(more), outs))
    return Resolution(resolved, tuple(transforms), frozenset(hidden))


def _service(contents: RepoContents, name: str) -> FeatureService:
    service = contents.feature_services.get(name)
    if service is None:
        raise NotFoundError("feature service", name, contents.feature_services)
    return service
