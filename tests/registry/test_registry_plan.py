"""plan(): actions, changed fields, ordering and input checks."""

from __future__ import annotations

import pytest

from registry import Change, ObjectSpec, RegistryError
from registry.diff import changed_fields

KINDS = ("entity", "data_source", "feature_view", "feature_service")


def fv(name, **spec):
    return ObjectSpec("feature_view", name, spec, (("entity", "driver"),))


def test_plan_lists_add_change_remove_and_skips_unchanged(registry):
    schema = [{"name": "trips", "dtype": "Int64"}, {"name": "rating", "dtype": "Float32"}]
    registry.apply(
        "p",
        [
            ObjectSpec("entity", "driver", {"join_keys": ["driver_id"]}),
            fv("stats", ttl=3600, schema=schema, online=True),
            fv("old", ttl=1),
            fv("same", ttl=1),
        ],
        KINDS,
    )
    new_schema = [schema[0], {"name": "rating", "dtype": "Float64"}]
    plan = registry.plan(
        "p",
        [
            fv("same", ttl=1),
            fv("stats", ttl=60, schema=new_schema, tags={"team": "ml"}),
            ObjectSpec("feature_service", "svc", {"features": ["stats"]}),
            ObjectSpec("entity", "driver", {"join_keys": ["driver_id"]}),
            ObjectSpec("data_source", "trips", {"path": "trips.parquet"}),
        ],
        KINDS,
    )
    assert plan == [
        Change("data_source", "trips", "add"),
        Change("feature_view", "old", "remove"),
        Change("feature_view", "stats", "change", ("online", "schema.1.dtype", "tags", "ttl")),
        Change("feature_service", "svc", "add"),
    ]
    assert registry.revision("p") == 1  # plan writes nothing
    assert registry.apply("p", [], ()).changes == []


def test_plan_matches_what_apply_then_does(registry):
    objects = [ObjectSpec("entity", "e", {"a": 1}), fv("v", ttl=2)]
    planned = registry.plan("p", objects, KINDS)
    assert registry.apply("p", objects, KINDS).changes == planned


def test_plan_order_follows_kinds_not_input(registry):
    objects = [fv("b"), fv("a"), ObjectSpec("entity", "z", {})]
    assert [(c.kind, c.name) for c in registry.plan("p", objects, KINDS)] == [
        ("entity", "z"), ("feature_view", "a"), ("feature_view", "b"),
    ]
    reversed_kinds = ("feature_view", "entity")
    assert [c.kind for c in registry.plan("p", objects, reversed_kinds)] == [
        "feature_view", "feature_view", "entity",
    ]


def test_changed_fields_paths():
    assert changed_fields({"a": 1}, {"a": 1}) == []
    assert changed_fields({"a": 1}, {"a": 2, "b": 0}) == ["a", "b"]
    assert changed_fields({"s": {"t": [1, {"u": 2}]}}, {"s": {"t": [1, {"u": 3}]}}) == [
        "s.t.1.u"
    ]
    # Lists of another length are reported whole.
    assert changed_fields({"l": [1, 2]}, {"l": [1, 2, 3]}) == ["l"]
    # Same value, other JSON type: 1, 1.0 and True are different specs.
    assert changed_fields({"x": 1}, {"x": 1.0}) == ["x"]
    assert changed_fields({"x": 1}, {"x": True}) == ["x"]
    assert changed_fields({"x": {"y": 1}}, {"x": [1]}) == ["x"]


def test_object_of_a_kind_not_applied_is_rejected(registry):
    with pytest.raises(RegistryError, match="model 'm' is not of the applied kinds"):
        registry.plan("p", [ObjectSpec("model", "m", {})], KINDS)


def test_duplicate_objects_are_rejected(registry):
    with pytest.raises(RegistryError, match="defined twice"):
        registry.apply("p", [fv("v"), fv("v", ttl=1)], KINDS)
    assert registry.revision("p") == 0


def test_kinds_must_not_be_a_string(registry):
    with pytest.raises(RegistryError, match="kinds must be a tuple"):
        registry.plan("p", [], "entity")
