"""The python flavor: a user's class or function saved as its import path, never pickled."""

from __future__ import annotations

import textwrap

import pyarrow as pa
import pytest

from featurestore.errors import ModelError
from featurestore.models import get_flavor, infer_flavor

MODULE = '''
import json
from pathlib import Path

class Rules:
    """Scores rows with a threshold and a weights file."""

    def __init__(self, threshold=0.5, files=None):
        self.threshold = threshold
        self.weights = json.loads(Path(files["weights.json"]).read_text()) if files else {"amount": 1.0}

    def predict(self, features):
        amounts = features.column("amount").to_pylist()
        return [a * self.weights["amount"] > self.threshold for a in amounts]

class Pair:
    def predict(self, features):
        return [[a, a * 2] for a in features.column("amount").to_pylist()]

def double(features):
    import numpy as np
    return np.asarray(features.column("amount")) * 2

class NeedsArgs:
    def __init__(self, secret):
        self.secret = secret

    def predict(self, features):
        return [self.secret] * features.num_rows

class NoPredict:
    pass

class Short:
    def predict(self, features):
        return [1]
'''


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    """A module in a 'repo' folder on sys.path, as when definitions load."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "fraud_models.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(repo))
    import importlib

    module = importlib.import_module("fraud_models")
    yield module
    import sys

    sys.modules.pop("fraud_models", None)


TABLE = pa.table({"amount": [0.2, 0.9, 1.4]})


def test_a_class_is_re_created_from_params_and_files(user_models, round_trip, tmp_path):
    weights = tmp_path / "w.json"
    weights.write_text('{"amount": 2.0}')
    in_memory = user_models.Rules(threshold=1.0, files={"weights.json": weights})
    predictor, meta, _ = round_trip("python", user_models.Rules, params={"threshold": 1.0},
                                    files={"weights.json": weights})
    assert meta["import_path"] == "fraud_models:Rules" and meta["files"] == ["weights.json"]
    weights.write_text('{"amount": -1.0}')  # the stored copy is what loads, not the original
    assert predictor.predict(TABLE) == in_memory.predict(TABLE) == [False, True, True]


def test_an_instance_is_saved_as_its_class_and_params(user_models, round_trip):
    model = user_models.Rules(threshold=0.8)
    assert infer_flavor(model).name == "python"
    predictor, meta, _ = round_trip("python", model, params={"threshold": 0.8})
    assert meta["params"] == {"threshold": 0.8}
    assert predictor.predict(TABLE) == model.predict(TABLE) == [False, True, True]


def test_a_function_and_an_import_path_string(user_models, round_trip):
    predictor, meta, _ = round_trip("python", user_models.double)
    assert meta["kind"] == "function"
    assert predictor.predict(TABLE) == [0.4, 1.8, 2.8]
    predictor, _, _ = round_trip("python", "fraud_models:Pair")
    assert predictor.predict(TABLE) == [[0.2, 0.4], [0.9, 1.8], [1.4, 2.8]]


def test_an_instance_that_cannot_be_re_created_is_refused(user_models, tmp_path):
    with pytest.raises(ModelError, match=r"NeedsArgs\(\) failed .*re-created from its params"):
        get_flavor("python").save(user_models.NeedsArgs("s3cret"), tmp_path)


def test_objects_that_cannot_be_imported_back_are_refused(user_models, tmp_path):
    class Local:
        def predict(self, features):
            return [1] * features.num_rows

    with pytest.raises(ModelError, match="defined inside a function"):
        get_flavor("python").save(Local(), tmp_path)
    with pytest.raises(ModelError, match="unpicklable object"):
        get_flavor("python").save(lambda features: [1], tmp_path)
    with pytest.raises(ModelError, match="not a class with predict"):
        get_flavor("python").save(user_models.NoPredict, tmp_path)
    with pytest.raises(ModelError, match="not a class with predict"):
        get_flavor("python").save(object(), tmp_path)
    with pytest.raises(ModelError, match="params must be JSON"):
        get_flavor("python").save(user_models.Rules, tmp_path, params={"threshold": object()})


def test_a_wrong_number_of_predictions_is_an_error(user_models, round_trip):
    predictor, _, _ = round_trip("python", "fraud_models:Short")
    with pytest.raises(ModelError, match=r"returned 1 value\(s\) for 3 input row\(s\)"):
        predictor.predict(TABLE)


def test_params_are_keyword_arguments_and_a_missing_module_is_named(user_models, round_trip):
    predictor, _, _ = round_trip("python", "fraud_models:NeedsArgs", params={"secret": "x"})
    assert predictor.predict(TABLE) == ["x", "x", "x"]
    with pytest.raises(ModelError, match="'no_such_module:Model' cannot be imported"):
        get_flavor("python").load(None, {"import_path": "no_such_module:Model", "kind": "class"})
