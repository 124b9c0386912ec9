"""Every flavor: a tiny model trained here, saved, stored, fetched and loaded, predicts
exactly what the in-memory model predicts for the same rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest


from featurestore.errors import ModelError, SchemaError
from featurestore.models import get_flavor, infer_flavor

FEATURES = ["amount", "age", "score", "visits"]  # the training_data fixture's columns


def test_sklearn_binary_classifier_gives_positive_class_probability(training_data, round_trip):
    from sklearn.linear_model import LogisticRegression

    X, y, table = training_data
    model = LogisticRegression().fit(X, y)
    assert infer_flavor(model).name == "sklearn"
    predictor, meta, _ = round_trip("sklearn", model)
    assert meta["format"] == "skops" and meta["estimator"].endswith("LogisticRegression")
    got = predictor.predict(table)
    assert got == model.predict_proba(X)[:, 1].tolist()
    assert all(type(v) is float for v in got)


def test_sklearn_pipeline_regressor(training_data, round_trip):
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, table = training_data
    model = make_pipeline(StandardScaler(), RandomForestRegressor(n_estimators=5, random_state=0)).fit(X, X[:, 3])
    predictor, _, _ = round_trip("sklearn", model)
    assert predictor.predict(table) == model.predict(X).tolist()


def test_sklearn_multiclass_gives_labels(training_data, round_trip):
    from sklearn.tree import DecisionTreeClassifier

    X, _, table = training_data
    labels = np.array(["low", "mid", "high"])[np.digitize(X[:, 0], [-0.5, 0.5])]
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, labels)
    predictor, _, _ = round_trip("sklearn", model)
    got = predictor.predict(table)
    assert got == model.predict(X).tolist() and {type(v) for v in got} == {str}


def test_sklearn_model_fitted_on_a_frame_gets_its_columns_by_name(training_data, round_trip):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y, _ = training_data
    frame = pd.DataFrame(X, columns=FEATURES)
    frame["country"] = np.where(X[:, 3] > 0, "FR", "DE")
    model = Pipeline([
        ("prep", ColumnTransformer([("num", StandardScaler(), FEATURES), ("cat", OneHotEncoder(), ["country"])])),
        ("clf", LogisticRegression()),
    ]).fit(frame, y)
    predictor, _, _ = round_trip("sklearn", model)
    # Columns in another order plus an unrelated one: picked by the names the model was fitted on.
    shuffled = pa.Table.from_pandas(frame[["country", *reversed(FEATURES)]]).append_column("extra", pa.array([1] * 200))
    assert predictor.predict(shuffled) == model.predict_proba(frame)[:, 1].tolist()


def test_xgboost_classifier_gives_positive_class_probability(training_data, round_trip):
    import xgboost as xgb

    X, y, table = training_data
    model = xgb.XGBClassifier(n_estimators=8, max_depth=3, random_state=0).fit(X, y)
    assert infer_flavor(model).name == "xgboost"
    predictor, meta, _ = round_trip("xgboost", model)
    assert meta["file"] == "model.ubj"
    assert predictor.predict(table) == model.predict_proba(X)[:, 1].tolist()


def test_xgboost_booster_with_feature_names_reads_columns_by_name(training_data, round_trip):
    import xgboost as xgb

    X, _, table = training_data
    booster = xgb.train({"max_depth": 2, "seed": 0}, xgb.DMatrix(X, label=X[:, 0] * 2, feature_names=FEATURES), 6)
    predictor, meta, _ = round_trip("xgboost", booster)
    assert meta["feature_names"] == FEATURES
    expected = booster.predict(xgb.DMatrix(X, feature_names=FEATURES)).tolist()
    assert predictor.predict(table.select(list(reversed(FEATURES)))) == expected


def test_xgboost_multiclass_gives_one_row_of_probabilities(training_data, round_trip):
    import xgboost as xgb

    X, _, table = training_data
    y = np.digitize(X[:, 0], [-0.5, 0.5])
    model = xgb.XGBClassifier(n_estimators=4, max_depth=2, random_state=0).fit(X, y)
    predictor, _, _ = round_trip("xgboost", model)
    got = predictor.predict(table)
    assert got == model.predict_proba(X).tolist() and len(got[0]) == 3


def test_lightgbm_classifier_gives_positive_class_probability(training_data, round_trip):
    import lightgbm as lgb

    X, y, table = training_data
    model = lgb.LGBMClassifier(n_estimators=10, num_leaves=4, min_child_samples=5, verbose=-1).fit(X, y)
    assert infer_flavor(model).name == "lightgbm"
    predictor, meta, _ = round_trip("lightgbm", model)
    assert meta["file"] == "model.txt"
    assert predictor.predict(table) == model.predict_proba(X)[:, 1].tolist()


@pytest.mark.parametrize("flavor", ["lightgbm", "xgboost"])
def test_a_served_row_and_a_large_batch_get_the_same_predictions(flavor, training_data, round_trip):
    """Small batches run on one thread, large ones on the library's threads: the same answers."""
    from featurestore.models.flavors.tabular import SMALL_BATCH

    X, y, table = training_data
    if flavor == "lightgbm":
        import lightgbm as lgb

        model = lgb.LGBMClassifier(n_estimators=10, num_leaves=4, min_child_samples=5, verbose=-1).fit(X, y)
    else:
        import xgboost as xgb

        model = xgb.XGBClassifier(n_estimators=10, max_depth=3).fit(X, y)
    predictor, _, _ = round_trip(flavor, model)
    repeats = SMALL_BATCH // table.num_rows + 1
    large = pa.concat_tables([table] * repeats)  # past the size that keeps the library's threads
    assert large.num_rows >= SMALL_BATCH
    expected = predictor.predict(table)
    assert expected == pytest.approx(model.predict_proba(X)[:, 1].tolist(), rel=1e-6)
    assert predictor.predict(large) == expected * repeats
    assert [predictor.predict(table.slice(i, 1))[0] for i in range(3)] == expected[:3]


def test_lightgbm_booster_regression(training_data, round_trip):
    import lightgbm as lgb

    X, _, table = training_data
    data = lgb.Dataset(X, label=X[:, 1], feature_name=FEATURES)
    booster = lgb.train({"objective": "regression", "num_leaves": 4, "verbose": -1, "min_data_in_leaf": 5}, data, 8)
    predictor, _, _ = round_trip("lightgbm", booster)
    assert predictor.predict(table.select(["visits", "score", "age", "amount"])) == booster.predict(X).tolist()
    # A renamed column is not matched by position.
    renamed = table.rename_columns(["amount", "age", "score", "n_visits"])
    with pytest.raises(SchemaError, match="missing 'visits'"):
        predictor.predict(renamed)


def test_lightgbm_booster_without_names_takes_columns_in_order(training_data, round_trip):
    import lightgbm as lgb

    X, _, table = training_data
    booster = lgb.train({"objective": "regression", "num_leaves": 4, "verbose": -1}, lgb.Dataset(X, label=X[:, 1]), 4)
    predictor, meta, _ = round_trip("lightgbm", booster)
    assert meta["feature_names"] == ["Column_0", "Column_1", "Column_2", "Column_3"]
    assert predictor.predict(table) == booster.predict(X).tolist()


def _linear_onnx(weights: np.ndarray, bias: float):
    """A logistic model as an ONNX graph: sigmoid(input @ W + b), input [N, k]."""
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "W"], ["z0"]), helper.make_node("Add", ["z0", "b"], ["z"]),
         helper.make_node("Sigmoid", ["z"], ["probability"])],
        "linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, len(weights)])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, [None, 1])],
        initializer=[numpy_helper.from_array(weights.astype(np.float32).reshape(-1, 1), "W"),
                     numpy_helper.from_array(np.array([bias], np.float32), "b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _run(proto, feeds):
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def test_onnx_single_matrix_input(training_data, round_trip):
    X, _, table = training_data
    proto = _linear_onnx(np.array([1.0, 0.5, -1.0, 0.25]), 0.1)
    assert infer_flavor(proto).name == "onnx"
    predictor, meta, _ = round_trip("onnx", proto)
    assert meta["inputs"] == ["input"] and meta["outputs"] == ["probability"]
    expected = _run(proto, {"input": X.astype(np.float32)})[:, 0].tolist()
    assert predictor.predict(table) == expected


def test_onnx_one_input_per_column_from_a_file(training_data, round_trip, tmp_path):
    from onnx import TensorProto, helper

    X, _, table = training_data
    graph = helper.make_graph(
        [helper.make_node("Mul", ["amount", "age"], ["prod"]), helper.make_node("Add", ["prod", "score"], ["out"])],
        "columns",
        [helper.make_tensor_value_info(n, TensorProto.DOUBLE, [None]) for n in ("amount", "age", "score")],
        [helper.make_tensor_value_info("out", TensorProto.DOUBLE, [None])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = tmp_path / "columns.onnx"
    path.write_bytes(proto.SerializeToString())
    predictor, meta, _ = round_trip("onnx", path)
    assert meta["file"] == "columns.onnx"
    expected = _run(proto, {"amount": X[:, 0], "age": X[:, 1], "score": X[:, 2]}).tolist()
    assert predictor.predict(table) == expected  # 'visits' is not an input: ignored
    assert expected == (X[:, 0] * X[:, 1] + X[:, 2]).tolist()


@pytest.mark.parametrize("flavor", ["xgboost", "lightgbm"])
def test_same_model_saved_twice_is_the_same_artifact(flavor, training_data, round_trip):
    import lightgbm as lgb
    import xgboost as xgb

    X, y, _ = training_data
    model = xgb.XGBClassifier(n_estimators=3) if flavor == "xgboost" else lgb.LGBMClassifier(n_estimators=3, verbose=-1)
    model.fit(X, y)
    assert round_trip(flavor, model)[2] == round_trip(flavor, model)[2]


@pytest.mark.parametrize("flavor", ["sklearn", "xgboost", "lightgbm"])
def test_nulls_reach_the_model_as_missing_values(flavor, training_data, round_trip):
    """Tree models take NaN as missing; a null in an integer column must not become 0."""
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.ensemble import HistGradientBoostingRegressor

    X, _, _ = training_data
    X = X.copy()
    X[::5, 1] = np.nan
    target = np.nan_to_num(X[:, 1], nan=3.0) + X[:, 0]
    model = {
        "sklearn": lambda: HistGradientBoostingRegressor(max_iter=10, random_state=0).fit(X, target),
        "xgboost": lambda: xgb.XGBRegressor(n_estimators=10, max_depth=3).fit(X, target),
        "lightgbm": lambda: lgb.LGBMRegressor(n_estimators=10, num_leaves=4, min_child_samples=5, verbose=-1)
        .fit(X, target),
    }[flavor]()
    predictor, _, _ = round_trip(flavor, model)
    rows = pa.table({"amount": [0.5, 0.5], "age": pa.array([None, 1], pa.int64()), "score": [0.0, 0.0],
                     "visits": [0.0, 0.0]})
    expected = model.predict(np.array([[0.5, np.nan, 0.0, 0.0], [0.5, 1.0, 0.0, 0.0]])).tolist()
    assert predictor.predict(rows) == expected


def test_zero_rows_give_no_predictions_and_library_errors_become_model_errors(training_data, round_trip):
    from sklearn.linear_model import LogisticRegression

    X, y, table = training_data
    predictor, _, _ = round_trip("sklearn", LogisticRegression().fit(X, y))
    assert predictor.predict(table.slice(0, 0)) == []
    with pytest.raises(ModelError, match="sklearn model .*LogisticRegression failed: ValueError"):
        predictor.predict(table.drop_columns(["visits"]))


@pytest.mark.parametrize("flavor", ["xgboost", "lightgbm"])
def test_an_unfitted_model_is_refused(flavor, tmp_path):
    import lightgbm as lgb
    import xgboost as xgb

    model = xgb.XGBClassifier() if flavor == "xgboost" else lgb.LGBMClassifier()
    with pytest.raises(ModelError, match="cannot save .*Classifier"):
        get_flavor(flavor).save(model, tmp_path)
