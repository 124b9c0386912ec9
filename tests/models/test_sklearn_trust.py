"""The sklearn flavor loads only what it can trust: skops types, pickles with trusted=True."""

from __future__ import annotations

import importlib
import sys
import textwrap

import joblib
import pytest

from featurestore.errors import ModelError
from featurestore.models import get_flavor, infer_flavor


@pytest.fixture
def model(training_data):
    from sklearn.linear_model import LogisticRegression

    X, y, _ = training_data
    return LogisticRegression().fit(X, y)


@pytest.mark.parametrize("suffix", [".pkl", ".joblib"])
def test_a_pickle_is_refused_unless_trusted(suffix, model, training_data, tmp_path, round_trip):
    X, _, table = training_data
    path = tmp_path / f"model{suffix}"
    joblib.dump(model, path)
    assert infer_flavor(path).name == "sklearn"
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(ModelError, match="refusing to register pickle file .*pass trusted=True"):
        get_flavor("sklearn").save(path, folder)
    assert list(folder.iterdir()) == []
    predictor, meta, _ = round_trip("sklearn", path, trusted=True)
    assert meta["format"] == "pickle"
    assert predictor.predict(table) == model.predict_proba(X)[:, 1].tolist()


def test_a_stored_pickle_loads_only_when_trusted(model, tmp_path, local_store):
    path = tmp_path / "model.pkl"
    joblib.dump(model, path)
    folder = tmp_path / "out"
    folder.mkdir()
    meta = get_flavor("sklearn").save(path, folder, trusted=True)
    fetched = local_store.fetch(local_store.put(folder), label="model m version 1")
    with pytest.raises(ModelError, match="refusing to load pickle file model.pkl"):
        get_flavor("sklearn").load(fetched, meta)


def test_a_skops_file_with_a_users_function_needs_trusted(training_data, tmp_path, monkeypatch, round_trip):
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "my_transforms.py").write_text(textwrap.dedent("""
        import numpy as np

        def signed_log(x):
            return np.sign(x) * np.log1p(np.abs(x))
    """))
    monkeypatch.syspath_prepend(str(repo))
    monkeypatch.delitem(sys.modules, "my_transforms", raising=False)
    transforms = importlib.import_module("my_transforms")
    X, _, table = training_data
    model = make_pipeline(FunctionTransformer(transforms.signed_log), LinearRegression()).fit(X, X[:, 0])
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(ModelError, match=r"types skops does not trust \(my_transforms.signed_log\)"):
        get_flavor("sklearn").save(model, folder)
    predictor, meta, digest = round_trip("sklearn", model, trusted=True)
    assert predictor.predict(table) == model.predict(X).tolist()
    with pytest.raises(ModelError, match="pass trusted=True"):
        get_flavor("sklearn").load(folder, meta)


def test_other_files_and_objects_are_refused(tmp_path):
    (tmp_path / "model.txt").write_text("x")
    with pytest.raises(ModelError, match="expected a .skops file"):
        get_flavor("sklearn").save(tmp_path / "model.txt", tmp_path)
    with pytest.raises(ModelError, match="not a scikit-learn estimator"):
        get_flavor("sklearn").save(object(), tmp_path)


def test_a_lambda_inside_a_pipeline_is_an_unpicklable_object(training_data, tmp_path):
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, _, _ = training_data
    model = make_pipeline(FunctionTransformer(lambda x: x * 2), LinearRegression()).fit(X, X[:, 0])
    with pytest.raises(ModelError, match=r"cannot restore .*<lambda>.*unpicklable object"):
        get_flavor("sklearn").save(model, tmp_path, trusted=True)

