"""The server and the store reload the definitions when they change, and only then: a
saved dataset (or any other kind) written meanwhile does not make them reload."""

from __future__ import annotations

import polars as pl

from .conftest import NOW, REFS, open_store


def test_a_saved_dataset_does_not_reload_the_definitions(client, repo, clock):
    state = client.app.state.serving
    loaded = state.revision
    with open_store(repo, clock) as other:  # another process saves a training set
        entities = pl.DataFrame({"driver_id": [1001], "event_timestamp": [NOW]})
        other.get_historical_features(entities, REFS).save("training")
        assert other.registry.revision(other.project) > other.definitions_revision() == loaded
    assert state.check_registry() is False
    assert state.revision == loaded
    assert state.store.refresh() is False


def test_an_apply_that_changes_a_definition_reloads_them(client, repo, clock):
    state = client.app.state.serving
    definitions = repo / "features" / "driver_stats.py"
    definitions.write_text(definitions.read_text().replace("ttl=timedelta(days=1)", "ttl=timedelta(days=2)", 1))
    with open_store(repo, clock) as other:
        other.apply()
    assert state.check_registry() is True
    assert state.store.get_feature_view("driver_hourly_stats").ttl.days == 2
