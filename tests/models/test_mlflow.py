"""An MLflow model directory, laid out as MLflow writes it, is read without MLflow."""

from __future__ import annotations

import importlib.util
import pickle
import textwrap

import pytest

from featurestore.errors import InputError
from featurestore.models import read_mlflow_model

HEADER = """\
artifact_path: model
mlflow_version: 2.9.2
model_uuid: 4f1c2a9b8e7d4c3b9a1f0e2d3c4b5a69
run_id: 0a1b2c3d4e5f
utc_time_created: '2024-01-15 10:00:00.000000'
"""


def _mlflow_dir(root, flavors_yaml, files):
    root.mkdir()
    (root / "MLmodel").write_text(HEADER + textwrap.dedent(flavors_yaml))
    (root / "requirements.txt").write_text("mlflow==2.9.2\n")
    for name, write in files.items():
        write(root / name)
    return root


def _register(folder, round_trip, **kwargs):
    flavor, options, path = read_mlflow_model(folder)
    predictor, meta, _ = round_trip(flavor.name, path, **options, **kwargs)
    return flavor, meta, predictor


def test_mlflow_is_not_installed():
    assert importlib.util.find_spec("mlflow") is None


def test_sklearn_model_directory(training_data, tmp_path, round_trip):
    from sklearn.linear_model import LogisticRegression

    X, y, table = training_data
    model = LogisticRegression().fit(X, y)
    folder = _mlflow_dir(tmp_path / "mlruns-model", """\
        flavors:
          python_function:
            env:
              conda: conda.yaml
              virtualenv: python_env.yaml
            loader_module: mlflow.sklearn
            model_path: model.pkl
            predict_fn: predict
            python_version: 3.11.7
          sklearn:
            code: null
            pickled_model: model.pkl
            serialization_format: cloudpickle
            sklearn_version: 1.3.2
        """, {"model.pkl": lambda p: p.write_bytes(pickle.dumps(model))})
    flavor, meta, predictor = _register(folder, round_trip, trusted=True)
    assert flavor.name == "sklearn"
    assert meta["source"] == {"format": "mlflow", "mlflow_flavor": "sklearn", "mlflow_version": "2.9.2",
                              "model_uuid": "4f1c2a9b8e7d4c3b9a1f0e2d3c4b5a69", "run_id": "0a1b2c3d4e5f",
                              "utc_time_created": "2024-01-15 10:00:00.000000"}
    assert predictor.predict(table) == model.predict_proba(X)[:, 1].tolist()


def test_python_function_over_sklearn_alone(training_data, tmp_path, round_trip):
    from sklearn.linear_model import Ridge

    X, _, table = training_data
    model = Ridge().fit(X, X[:, 2])
    folder = _mlflow_dir(tmp_path / "m", """\
        flavors:
          python_function:
            loader_module: mlflow.sklearn
            model_path: model.pkl
        """, {"model.pkl": lambda p: p.write_bytes(pickle.dumps(model))})
    flavor, meta, predictor = _register(folder / "MLmodel", round_trip, trusted=True)
    assert flavor.name == "sklearn" and meta["source"]["mlflow_flavor"] == "python_function"
    assert predictor.predict(table) == model.predict(X).tolist()


def test_xgboost_model_directory(training_data, tmp_path, round_trip):
    import xgboost as xgb

    X, y, table = training_data
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)
    folder = _mlflow_dir(tmp_path / "m", """\
        flavors:
          python_function:
            data: model.ubj
            loader_module: mlflow.xgboost
          xgboost:
            code: null
            data: model.ubj
            model_class: xgboost.sklearn.XGBClassifier
            model_format: ubj
            xgb_version: 2.0.3
        """, {"model.ubj": lambda p: model.save_model(str(p))})
    flavor, meta, predictor = _register(folder, round_trip)
    assert flavor.name == "xgboost" and meta["file"] == "model.ubj"
    assert predictor.predict(table) == model.predict_proba(X)[:, 1].tolist()


def test_lightgbm_model_directory(training_data, tmp_path, round_trip):
    import lightgbm as lgb

    X, _, table = training_data
    booster = lgb.train({"objective": "regression", "num_leaves": 4, "verbose": -1}, lgb.Dataset(X, label=X[:, 0]), 5)
    folder = _mlflow_dir(tmp_path / "m", """\
        flavors:
          lightgbm:
            code: null
            data: model.lgb
            lgb_version: 4.1.0
            model_class: lightgbm.basic.Booster
          python_function:
            data: model.lgb
            loader_module: mlflow.lightgbm
        """, {"model.lgb": lambda p: booster.save_model(str(p))})
    flavor, _, predictor = _register(folder, round_trip)
    assert flavor.name == "lightgbm"
    assert predictor.predict(table) == booster.predict(X).tolist()


def test_onnx_model_directory(training_data, tmp_path, round_trip):
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    X, _, table = training_data
    graph = helper.make_graph([helper.make_node("ReduceSum", ["input", "axes"], ["total"], keepdims=1)], "sum",
                              [helper.make_tensor_value_info("input", TensorProto.DOUBLE, [None, 4])],
                              [helper.make_tensor_value_info("total", TensorProto.DOUBLE, [None, 1])],
                              initializer=[numpy_helper.from_array(np.array([1], np.int64), "axes")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    folder = _mlflow_dir(tmp_path / "m", """\
        flavors:
          onnx:
            code: null
            data: model.onnx
            onnx_version: 1.15.0
            providers: [CUDAExecutionProvider, CPUExecutionProvider]
          python_function:
            data: model.onnx
            loader_module: mlflow.onnx
        """, {"model.onnx": lambda p: p.write_bytes(proto.SerializeToString())})
    flavor, _, predictor = _register(folder, round_trip)
    assert flavor.name == "onnx"
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"input": X})[0][:, 0].tolist()
    assert predictor.predict(table) == expected
    assert expected == pytest.approx(X.sum(axis=1).tolist())


def test_an_unsupported_flavor_is_named(tmp_path):
    folder = _mlflow_dir(tmp_path / "m", """\
        flavors:
          python_function:
            loader_module: mlflow.pytorch
            data: data
          pytorch:
            model_data: data
            pytorch_version: 2.1.0
        """, {})
    with pytest.raises(InputError, match=r"unsupported MLflow flavor\(s\) python_function, pytorch \(loader "
                                         r"mlflow.pytorch\); supported: sklearn, onnx"):
        read_mlflow_model(folder)


def test_not_an_mlflow_directory(tmp_path):
    with pytest.raises(InputError, match="no MLmodel file"):
        read_mlflow_model(tmp_path)
    (tmp_path / "MLmodel").write_text("flavors:\n  onnx:\n    data: missing.onnx\n")
    with pytest.raises(InputError, match="names 'missing.onnx', which is not in"):
        read_mlflow_model(tmp_path)
