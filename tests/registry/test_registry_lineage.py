"""lineage(): transitive upstream and downstream edges of current objects."""

from __future__ import annotations

import pytest

from registry import Edge, ObjectSpec, RegistryError

KINDS = ("entity", "data_source", "feature_view", "feature_service")


@pytest.fixture
def seeded(registry):
    registry.apply(
        "p",
        [
            ObjectSpec("entity", "driver", {}),
            ObjectSpec("data_source", "trips", {}),
            ObjectSpec("data_source", "ratings", {}),
            ObjectSpec(
                "feature_view", "trip_stats", {},
                (("data_source", "trips"), ("entity", "driver")),
            ),
            ObjectSpec("feature_view", "rating_stats", {}, (("data_source", "ratings"),)),
            ObjectSpec(
                "feature_service", "svc", {},
                (("feature_view", "trip_stats"), ("feature_view", "rating_stats")),
            ),
        ],
        KINDS,
    )
    registry.put("p", ObjectSpec("model", "churn", {}, (("feature_service", "svc"),)))
    return registry


E_TRIPS = Edge("data_source", "trips", "feature_view", "trip_stats")
E_DRIVER = Edge("entity", "driver", "feature_view", "trip_stats")
E_RATINGS = Edge("data_source", "ratings", "feature_view", "rating_stats")
E_SVC_TRIP = Edge("feature_view", "trip_stats", "feature_service", "svc")
E_SVC_RATING = Edge("feature_view", "rating_stats", "feature_service", "svc")
E_MODEL = Edge("feature_service", "svc", "model", "churn")


def test_upstream_is_transitive(seeded):
    assert set(seeded.lineage("p", "model", "churn", "upstream")) == {
        E_MODEL, E_SVC_TRIP, E_SVC_RATING, E_TRIPS, E_DRIVER, E_RATINGS,
    }
    assert seeded.lineage("p", "feature_view", "trip_stats", "upstream") == [
        E_TRIPS, E_DRIVER,
    ]


def test_downstream_is_transitive(seeded):
    # Sorted by (from_kind, from_name, to_kind, to_name).
    assert seeded.lineage("p", "data_source", "trips", "downstream") == [
        E_TRIPS, E_MODEL, E_SVC_TRIP,
    ]
    assert seeded.lineage("p", "model", "churn", "downstream") == []


def test_both_is_the_union_not_the_whole_graph(seeded):
    both = seeded.lineage("p", "feature_view", "trip_stats")
    assert set(both) == {E_TRIPS, E_DRIVER, E_SVC_TRIP, E_MODEL}
    assert both == sorted(both, key=lambda e: (e.from_kind, e.from_name, e.to_kind, e.to_name))


def test_removed_objects_lose_their_edges_and_changes_replace_them(seeded):
    seeded.apply(
        "p",
        [
            ObjectSpec("entity", "driver", {}),
            ObjectSpec("data_source", "trips", {}),
            ObjectSpec("data_source", "ratings", {}),
            ObjectSpec("feature_view", "trip_stats", {}, (("data_source", "ratings"),)),
        ],
        KINDS,
    )
    # svc and rating_stats are gone; trip_stats now reads ratings only. The model
    # (outside the applied kinds) still names svc, so that edge stays.
    assert seeded.lineage("p", "data_source", "trips", "downstream") == []
    assert seeded.lineage("p", "data_source", "ratings", "downstream") == [
        Edge("data_source", "ratings", "feature_view", "trip_stats")
    ]
    assert seeded.lineage("p", "model", "churn", "upstream") == [E_MODEL]


def test_cycles_terminate(registry):
    registry.put("p", ObjectSpec("x", "a", {}, (("x", "b"),)))
    registry.put("p", ObjectSpec("x", "b", {}, (("x", "a"),)))
    assert registry.lineage("p", "x", "a", "upstream") == [
        Edge("x", "a", "x", "b"), Edge("x", "b", "x", "a"),
    ]


def test_bad_direction(seeded):
    with pytest.raises(RegistryError, match="'sideways' is not one of upstream"):
        seeded.lineage("p", "model", "churn", "sideways")
