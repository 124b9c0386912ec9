"""Saved datasets are immutable: every version keeps its own file, named by its sha256,
and reading a version back refuses a file whose bytes changed."""

import hashlib
from datetime import timedelta
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from registry import ObjectSpec

from featurestore.datasets import shown_path
from featurestore.errors import InputError, IntegrityError, NotFoundError

from .conftest import NOW

REFS = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate"]


def entities(*drivers):
    return pl.DataFrame({"driver_id": list(drivers), "event_timestamp": [NOW] * len(drivers)})


def save(store, name, *drivers):
    return store.get_historical_features(entities(*drivers), REFS).save(name)


def file_of(store, record) -> Path:
    """A record's file on this machine: its path is relative to the offline store."""
    return store.config.offline_store / record["path"]


def test_saving_twice_keeps_the_first_versions_file_and_rows(store):
    first = save(store, "training", 1001, 1002)
    first_bytes = file_of(store, first).read_bytes()
    second = save(store, "training", 1001, 1002, 1003)

    assert (first["version"], second["version"]) == (1, 2)
    assert first["path"] != second["path"]
    folder = file_of(store, first).parent
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"{first['sha256']}.parquet",
                                                               f"{second['sha256']}.parquet"])
    assert file_of(store, first).read_bytes() == first_bytes
    assert hashlib.sha256(first_bytes).hexdigest() == first["sha256"]

    v1 = store.get_saved_dataset("training", version=1)
    assert (v1.version, v1.path, v1.sha256) == (1, file_of(store, first), first["sha256"])
    assert v1.to_arrow().column("driver_id").to_pylist() == [1001, 1002]
    latest = store.get_saved_dataset("training")
    assert latest.version == 2 and latest.to_dict() == second
    assert latest.to_arrow().column("driver_id").to_pylist() == [1001, 1002, 1003]
    assert [(d["name"], d["version"]) for d in store.list_saved_datasets()] == [("training", 2)]


def test_a_version_reads_back_exactly_the_rows_that_were_saved(engine_store):
    store = engine_store
    job = store.get_historical_features(
        pl.DataFrame({"driver_id": [1002, 1001], "event_timestamp": [NOW, NOW - timedelta(hours=3)]}), REFS)
    saved = job.save("training")
    assert saved["rows"] == 2
    assert store.get_saved_dataset("training").to_arrow().equals(job.to_arrow())
    assert pq.read_table(file_of(store, saved)).equals(job.to_arrow())


def test_the_same_rows_saved_again_are_a_new_version_of_the_same_content(store):
    first, second = save(store, "training", 1001), save(store, "training", 1001)
    assert second["version"] == 2 and second["sha256"] == first["sha256"]
    assert store.get_saved_dataset("training", 1).to_arrow().equals(store.get_saved_dataset("training", 2).to_arrow())


def test_a_changed_file_is_refused_naming_the_version(store):
    first = save(store, "training", 1001, 1002)
    second = save(store, "training", 1003)
    pq.write_table(pq.read_table(file_of(store, second)), file_of(store, first))  # valid Parquet, other rows
    with pytest.raises(IntegrityError, match=r"saved dataset 'training' version 1: its file .* changed"):
        store.get_saved_dataset("training", 1).to_arrow()
    assert store.get_saved_dataset("training", 2).to_arrow().num_rows == 1


def test_a_missing_file_is_refused_naming_the_version(store):
    saved = save(store, "training", 1001)
    file_of(store, saved).unlink()
    with pytest.raises(IntegrityError, match="'training' version 1: its file .* is missing"):
        store.get_saved_dataset("training").to_arrow()


def test_a_version_saved_without_a_hash_is_refused(store, repo):
    path = repo / "data" / "offline" / "datasets" / "old.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(store.get_historical_features(entities(1001), REFS).to_arrow(), path)
    store.registry.put(store.project, ObjectSpec("saved_dataset", "old", {"path": str(path), "rows": 1}))
    old = store.get_saved_dataset("old")
    assert old.sha256 is None
    with pytest.raises(IntegrityError, match="'old' version 1 was saved before datasets recorded a sha256"):
        old.to_arrow()


def test_a_record_names_its_file_relative_to_the_offline_store(store):
    saved = save(store, "training", 1001)
    assert saved["path"] == f"datasets/training/{saved['sha256']}.parquet"
    assert store.get_saved_dataset("training").to_dict() == saved
    assert store.list_saved_datasets() == [saved]
    assert store.registry.get(store.project, "saved_dataset", "training").spec["path"] == saved["path"]


def test_a_version_recorded_with_an_absolute_path_reads_and_shows_it_relative(store, repo):
    from serving.ui.definitions import definition_page

    rows = store.get_historical_features(entities(1001), REFS).to_arrow()
    path = repo / "data" / "offline" / "datasets" / "old" / "rows.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(rows, path)
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    store.registry.put(store.project, ObjectSpec("saved_dataset", "old", {"path": str(path), "sha256": sha256,
                                                                         "rows": 1, "features": REFS}))
    old = store.get_saved_dataset("old")
    assert old.path == path and old.to_arrow().equals(rows)
    assert old.to_dict()["path"] == "datasets/old/rows.parquet"
    assert [d["path"] for d in store.list_saved_datasets()] == ["datasets/old/rows.parquet"]
    assert str(repo) not in definition_page(store, "saved_dataset", "old")["spec_json"]
    path.unlink()
    with pytest.raises(IntegrityError, match="its file datasets/old/rows.parquet .*is missing") as missing:
        old.to_arrow()
    assert str(repo) not in str(missing.value)


@pytest.mark.parametrize(("recorded", "shown"), [
    ("datasets/a/x.parquet", "datasets/a/x.parquet"),
    ("/srv/repo/data/offline/datasets/a/x.parquet", "datasets/a/x.parquet"),
    ("/elsewhere/datasets/a/x.parquet", "x.parquet"),
])
def test_clients_see_a_path_relative_to_the_offline_store_or_the_file_name(recorded, shown):
    assert shown_path(recorded, Path("/srv/repo/data/offline")) == shown


def test_unknown_names_and_versions_are_not_found(store):
    save(store, "training", 1001)
    with pytest.raises(NotFoundError, match="unknown saved dataset 'trainin'; did you mean 'training'"):
        store.get_saved_dataset("trainin")
    with pytest.raises(NotFoundError, match="'3'; it has versions 1"):
        store.get_saved_dataset("training", 3)


# A dataset's name becomes a folder name: one name rule (featurestore/names.py) refuses a
# name that is empty, blank, too long for a file name, holds a NUL or a separator, or would
# leave the datasets folder, before anything is written, as a FeatureStoreError.


@pytest.mark.parametrize("name", ["", " ", "a" * 300, "a\x00b", "../escape", "sub/dir", "back\\slash", ".hidden",
                                  "-flag", "two words", "line\n", "caf\u00e9", None, 5])
def test_a_bad_dataset_name_is_refused_and_nothing_is_written(store, repo, name):
    job = store.get_historical_features(pl.DataFrame({"driver_id": [1001], "event_timestamp": [NOW]}),
                                        ["driver_hourly_stats:conv_rate"])
    offline = repo / "data" / "offline"
    before = sorted(p for p in offline.rglob("*")) if offline.exists() else []
    with pytest.raises(InputError, match="dataset name"):
        job.save(name)
    assert (sorted(p for p in offline.rglob("*")) if offline.exists() else []) == before
    assert store.list_saved_datasets() == []


def test_a_good_dataset_name_is_saved(store, repo):
    job = store.get_historical_features(pl.DataFrame({"driver_id": [1001], "event_timestamp": [NOW]}),
                                        ["driver_hourly_stats:conv_rate"])
    saved = job.save("drivers-2024.05_v1")
    assert saved["path"] == f"datasets/drivers-2024.05_v1/{saved['sha256']}.parquet"
    assert store.get_saved_dataset("drivers-2024.05_v1").path == repo / "data" / "offline" / saved["path"]
