"""Versions, history, put, get/list, remove and re-add, revisions and state."""

from __future__ import annotations

from datetime import timezone

import pytest

from registry import ObjectSpec, RegistryError

KINDS = ("entity", "data_source", "feature_view")


def entity(name="driver", **spec):
    return ObjectSpec("entity", name, {"join_keys": ["driver_id"], **spec})


def view(name="stats", ttl=3600, deps=(("entity", "driver"),)):
    return ObjectSpec("feature_view", name, {"ttl": ttl}, deps)


def test_new_project_is_empty_at_revision_0(registry):
    assert registry.revision("p") == 0
    assert registry.list("p") == []
    assert registry.get("p", "entity", "driver") is None
    assert registry.history("p", "entity", "driver") == []


def test_apply_writes_version_1_then_a_new_version_only_on_change(registry):
    first = registry.apply("p", [entity(), view()], KINDS)
    assert first.revision == 1
    stored = registry.get("p", "feature_view", "stats")
    assert (stored.version, stored.spec, stored.revision, stored.removed) == (
        1, {"ttl": 3600}, 1, False,
    )
    assert stored.depends_on == (("entity", "driver"),)
    assert stored.created_at.tzinfo == timezone.utc

    again = registry.apply("p", [entity(), view()], KINDS)
    assert again.changes == [] and again.revision == 1
    assert len(registry.history("p", "feature_view", "stats")) == 1

    changed = registry.apply("p", [entity(), view(ttl=60)], KINDS)
    assert changed.revision == 2
    assert [c.name for c in changed.changes] == ["stats"]
    assert registry.get("p", "feature_view", "stats").version == 2
    assert registry.get("p", "entity", "driver").version == 1  # unchanged: not rewritten
    assert registry.get("p", "feature_view", "stats", version=1).spec == {"ttl": 3600}
    assert registry.get("p", "feature_view", "stats", version=3) is None


def test_key_order_and_tuples_are_not_changes(registry):
    registry.apply("p", [ObjectSpec("entity", "e", {"a": 1, "b": [1, 2]})], KINDS)
    result = registry.apply("p", [ObjectSpec("entity", "e", {"b": (1, 2), "a": 1})], KINDS)
    assert result.changes == [] and registry.revision("p") == 1


def test_remove_writes_a_tombstone_and_re_add_continues_versions(registry):
    registry.apply("p", [entity(), view()], KINDS)
    removed = registry.apply("p", [entity()], KINDS)
    assert [(c.name, c.action) for c in removed.changes] == [("stats", "remove")]
    assert registry.get("p", "feature_view", "stats") is None
    assert [o.name for o in registry.list("p")] == ["driver"]
    tombstone = registry.get("p", "feature_view", "stats", version=2)
    assert tombstone.removed and tombstone.spec == {"ttl": 3600}

    readded = registry.apply("p", [entity(), view(ttl=5)], KINDS)
    assert [(c.name, c.action) for c in readded.changes] == [("stats", "add")]
    history = registry.history("p", "feature_view", "stats")
    assert [(o.version, o.removed, o.revision) for o in history] == [
        (1, False, 1), (2, True, 2), (3, False, 3),
    ]
    assert registry.get("p", "feature_view", "stats").spec == {"ttl": 5}


def test_apply_leaves_kinds_outside_its_kinds_alone(registry):
    registry.put("p", ObjectSpec("model", "churn", {"uri": "s3://m"}))
    registry.apply("p", [entity()], KINDS)
    assert registry.get("p", "model", "churn") is not None
    registry.apply("p", [], ("entity",))
    assert registry.get("p", "entity", "driver") is None
    assert registry.get("p", "model", "churn") is not None


def test_projects_are_separate(registry):
    registry.apply("a", [entity()], KINDS)
    assert registry.revision("a") == 1 and registry.revision("b") == 0
    assert registry.list("b") == []
    registry.apply("b", [], KINDS)
    assert registry.get("a", "entity", "driver") is not None


def test_list_is_sorted_by_kind_then_name_and_filters_by_kind(registry):
    registry.apply(
        "p",
        [view("z"), view("a"), entity("rider"), entity("driver")],
        KINDS,
    )
    assert [(o.kind, o.name) for o in registry.list("p")] == [
        ("entity", "driver"), ("entity", "rider"),
        ("feature_view", "a"), ("feature_view", "z"),
    ]
    assert [o.name for o in registry.list("p", "feature_view")] == ["a", "z"]


def test_put_versions_only_on_change_and_bumps_revision(registry):
    first = registry.put("p", ObjectSpec("saved_dataset", "train", {"rows": 10}))
    assert (first.version, first.revision) == (1, 1)
    assert registry.get("p", "saved_dataset", "train") == first
    same = registry.put("p", ObjectSpec("saved_dataset", "train", {"rows": 10}))
    assert same == first and registry.revision("p") == 1
    second = registry.put(
        "p", ObjectSpec("saved_dataset", "train", {"rows": 11}, (("feature_view", "v"),))
    )
    assert (second.version, second.revision) == (2, 2)
    assert registry.get("p", "saved_dataset", "train") == second


def test_put_re_adds_a_removed_object(registry):
    registry.apply("p", [entity()], KINDS)
    registry.apply("p", [], KINDS)
    again = registry.put("p", entity())
    assert again.version == 3 and not again.removed


def test_only_dependencies_changing_is_a_change(registry):
    registry.apply("p", [view(deps=(("entity", "driver"),))], KINDS)
    plan = registry.plan("p", [view(deps=(("entity", "rider"),))], KINDS)
    assert [(c.action, c.fields) for c in plan] == [("change", ("depends_on",))]
    # Order of depends_on does not matter.
    deps = (("entity", "a"), ("data_source", "s"))
    registry.apply("p", [view(deps=deps)], KINDS)
    assert registry.plan("p", [view(deps=tuple(reversed(deps)))], KINDS) == []


def test_state_round_trips_without_bumping_revision(registry):
    assert registry.get_state("p", "watermark:stats") is None
    registry.set_state("p", "watermark:stats", {"end": "2024-01-01T00:00:00+00:00"})
    registry.set_state("p", "watermark:stats", {"end": "2024-01-02T00:00:00+00:00"})
    assert registry.get_state("p", "watermark:stats") == {"end": "2024-01-02T00:00:00+00:00"}
    assert registry.get_state("other", "watermark:stats") is None
    assert registry.revision("p") == 0
    registry.set_state("p", "watermark:stats", None)
    assert registry.get_state("p", "watermark:stats") is None
    with pytest.raises(RegistryError, match="not JSON-serializable"):
        registry.set_state("p", "k", {1, 2})


@pytest.mark.parametrize(
    "build",
    [
        lambda: ObjectSpec("", "x", {}),
        lambda: ObjectSpec("entity", "", {}),
        lambda: ObjectSpec("entity", "x", ["not", "a", "dict"]),
        lambda: ObjectSpec("entity", "x", {}, ("entity",)),
        lambda: ObjectSpec("entity", "x", {}, (("entity", ""),)),
    ],
)
def test_invalid_object_specs_are_rejected(build):
    with pytest.raises(RegistryError):
        build()


def test_put_rejects_non_json_spec_and_writes_nothing(registry):
    with pytest.raises(RegistryError, match="spec of entity 'x' is not JSON"):
        registry.put("p", ObjectSpec("entity", "x", {"nan": float("nan")}))
    assert registry.revision("p") == 0 and registry.history("p", "entity", "x") == []
