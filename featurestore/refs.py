"""Feature references: ``"view:feature"`` strings or a FeatureService, resolved to views.

Resolution is shared by offline and online reads so both accept exactly the same input
and name unknown views and features with the same close-match hints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from featurestore.definitions import FeatureService, FeatureView
from featurestore.errors import InputError, NotFoundError
from featurestore.repo import RepoContents

__all__ = ["ResolvedView", "resolve_features"]


@dataclass(frozen=True)
class ResolvedView:
    """One view and the features wanted from it, with their output column names."""

    view: FeatureView
    features: tuple[str, ...]
    output_names: tuple[str, ...]


def resolve_features(
    contents: RepoContents,
    features: Sequence[str] | FeatureService | str,
    full_feature_names: bool = False,
) -> list[ResolvedView]:
    """Views in first-mention order, each with its requested features in request order.
    A reference given twice is refused (as Feast does): it would be one column anyway."""
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
    for ref in refs:
        if not isinstance(ref, str) or ref.count(":") != 1:
            raise InputError(f"feature reference {ref!r} must look like 'view_name:feature_name'")
        view_name, feature = ref.split(":")
        view = contents.feature_views.get(view_name)
        if view is None:
            raise NotFoundError("feature view", view_name, contents.feature_views,
                                hint="run `featurestore apply` after defining it")
        if feature not in view.feature_names:
            all_refs = [f"{view_name}:{f}" for f in view.feature_names]
            raise NotFoundError("feature", feature, [*view.feature_names, *all_refs], where=f"view {view_name!r}")
        names = wanted.setdefault(view_name, [])
        if feature in names:
            raise InputError(f"feature {ref!r} is requested twice; list each feature once")
        names.append(feature)

    resolved = []
    seen_outputs: dict[str, str] = {}
    for view_name, names in wanted.items():
        outputs = tuple(f"{view_name}__{f}" if full_feature_names else f for f in names)
        for out in outputs:
            if out in seen_outputs:
                raise InputError(
                    f"feature {out!r} is requested from both {seen_outputs[out]!r} and {view_name!r}; "
                    "pass full_feature_names=True to name them view__feature"
                )
            seen_outputs[out] = view_name
        resolved.append(ResolvedView(contents.feature_views[view_name], tuple(names), outputs))
    return resolved


def _service(contents: RepoContents, name: str) -> FeatureService:
    service = contents.feature_services.get(name)
    if service is None:
        raise NotFoundError("feature service", name, contents.feature_services)
    return service
