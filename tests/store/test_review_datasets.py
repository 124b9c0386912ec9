"""A saved dataset's name becomes a file name: a name that is empty or would leave the
datasets folder is refused before anything is written, as a FeatureStoreError."""

import polars as pl
import pytest

from featurestore.errors import InputError

from .conftest import NOW


@pytest.mark.parametrize("name", ["", "../escape", "sub/dir", ".hidden", None])
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
    assert saved["path"] == str(repo / "data" / "offline" / "datasets" / "drivers-2024.05_v1" / f"{saved['sha256']}.parquet")
