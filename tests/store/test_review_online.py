"""get_online_features takes join keys straight from numpy/pandas: arrays and Series as
the columns of a dict, numpy scalars in row dicts (what iterating a DataFrame gives)."""

import numpy as np
import pandas as pd
import pytest

from featurestore.errors import InputError

from .conftest import NOW

REFS = ["driver_hourly_stats:conv_rate"]


@pytest.fixture
def materialized(store):
    store.materialize(None, NOW, views=["driver_hourly_stats"])
    return store


def test_numpy_and_pandas_join_keys_read_like_python_ints(materialized):
    want = materialized.get_online_features(REFS, {"driver_id": [1001, 1002]}).to_dict()
    assert want["conv_rate"][0] is not None
    for entities in (
        {"driver_id": np.array([1001, 1002])},
        {"driver_id": pd.Series([1001, 1002])},
        [{"driver_id": np.int64(1001)}, {"driver_id": np.int32(1002)}],
        pd.DataFrame({"driver_id": [1001, 1002]}).to_dict("list"),
    ):
        got = materialized.get_online_features(REFS, entities).to_dict()
        assert got == want
        assert all(type(v) is int for v in got["driver_id"])


def test_a_numpy_value_of_the_wrong_kind_is_still_refused(materialized):
    with pytest.raises(InputError, match="driver_id"):
        materialized.get_online_features(REFS, {"driver_id": np.array([1001.5])})
