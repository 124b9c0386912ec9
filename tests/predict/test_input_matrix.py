"""The served path's numpy matrix of model inputs (``ModelInputs.matrix``) against the
Arrow table it stands in for: the same matrix as ``feature_matrix(table)``, the same
policy for missing values, the table's errors, and the same predictions from each flavor."""

from __future__ import annotations

import lightgbm
import numpy as np
import pyarrow as pa
import pytest
import xgboost
from sklearn.linear_model import LogisticRegression

from featurestore.errors import InputError, MissingFeatureError
from featurestore.models.flavors.lightgbm import _Predictor as LightGBMPredictor
from featurestore.models.flavors.sklearn import _Predictor as SklearnPredictor
from featurestore.models.flavors.tabular import feature_matrix
from featurestore.models.flavors.xgboost import _Predictor as XGBoostPredictor
from featurestore.models.inputs import InputSpec, read_inputs
from featurestore.online.read import OnlineResponse

P, NULL, MISSING = "PRESENT", "NULL_VALUE", "NOT_FOUND"
TYPES = {"f32": pa.float32(), "f64": pa.float64(), "i64": pa.int64(), "i32": pa.int32(), "flag": pa.bool_()}


def _spec(types: dict, on_missing: str = "null", defaults: dict | None = None, request: tuple = ()) -> InputSpec:
    columns = tuple(types)
    schema = pa.schema([pa.field(name, kind) for name, kind in types.items()])
    features = tuple(f"v:{c}" for c in columns[: len(columns) - len(request)])
    return InputSpec(uri="m/1", features=features, feature_service=None, full_feature_names=False,
                     request_fields=request, columns=columns, schema=schema, types=tuple(types.values()),
                     defaults=tuple((defaults or {}).get(c) for c in columns), on_missing=on_missing)


def _response(columns: dict[str, list], statuses: dict[str, list] | None = None) -> OnlineResponse:
    n = len(next(iter(columns.values())))
    names = ["id", *columns]
    values = [list(range(n)), *columns.values()]
    sts = [[P] * n] + [(statuses or {}).get(c) or [P if v is not None else NULL for v in vs]
                       for c, vs in columns.items()]
    return OnlineResponse(names, values, sts, [[None] * n for _ in names], [None] * len(names))


def _same_as_the_table(inputs) -> np.ndarray:
    matrix, expected = inputs.matrix(), feature_matrix(inputs.table)
    assert matrix is not None
    assert matrix.dtype == expected.dtype and matrix.shape == expected.shape
    np.testing.assert_array_equal(matrix, expected)  # NaN where NaN, every other value equal
    return matrix


@pytest.mark.parametrize("columns", [
    {"f32": [0.1, 2.5], "f64": [0.1, 3.0], "i64": [7, 2**40], "i32": [1, -5], "flag": [True, False]},
    {"f32": [0.1, None], "f64": [None, 1e300], "i64": [7, None], "i32": [None, 3], "flag": [None, True]},
    {"f32": [1, 2], "f64": [3, 2**53], "i64": [0, 1], "i32": [0, 1], "flag": [False, False]},  # ints for floats
])
def test_the_matrix_is_the_one_the_table_gives_with_its_dtype_and_nans(columns):
    types = {name: TYPES[name] for name in columns}
    _same_as_the_table(read_inputs(_spec(types), _response(columns)))


@pytest.mark.parametrize("types", [{"f32": pa.float32()}, {"f64": pa.float64()}, {"i32": pa.int32(), "i64": pa.int64()}])
def test_columns_of_one_type_keep_that_type(types):
    columns = {name: [1, 2, None][: 2] for name in types}
    matrix = _same_as_the_table(read_inputs(_spec(types), _response(columns)))
    assert matrix.dtype == feature_matrix(pa.table({n: pa.array([1, 2], t) for n, t in types.items()})).dtype


def test_a_default_for_a_missing_feature_reaches_the_matrix():
    spec = _spec({"f64": pa.float64(), "i64": pa.int64()}, on_missing="default", defaults={"f64": 0.5, "i64": 3})
    response = _response({"f64": [1.0, None], "i64": [None, 4]}, statuses={"f64": [P, MISSING], "i64": [MISSING, P]})
    matrix = _same_as_the_table(read_inputs(spec, response))
    assert matrix.tolist() == [[1.0, 3.0], [0.5, 4.0]] and matrix.dtype == np.float64


def test_on_missing_error_is_raised_before_any_matrix():
    spec = _spec({"f64": pa.float64()}, on_missing="error")
    with pytest.raises(MissingFeatureError):
        read_inputs(spec, _response({"f64": [1.0, None]}, statuses={"f64": [P, MISSING]}))


def test_a_request_field_given_as_numbers_goes_into_the_matrix():
    spec = _spec({"f64": pa.float64(), "trip_km": pa.float64()}, request=("trip_km",))
    inputs = read_inputs(spec, _response({"f64": [1.0, 2.0]}), {"trip_km": [3.5, 4]})
    assert _same_as_the_table(inputs).tolist() == [[1.0, 3.5], [2.0, 4.0]]


def test_a_non_numeric_input_has_no_matrix_and_goes_through_the_table():
    inputs = read_inputs(_spec({"f64": pa.float64(), "city": pa.string()}), _response({"f64": [1.0], "city": ["x"]}))
    assert inputs.matrix() is None
    inputs.validate()
    assert inputs.table.column("city").to_pylist() == ["x"]


@pytest.mark.parametrize("kind, value", [
    (pa.float64(), "3.5"), (pa.int64(), True), (pa.int32(), 2**40), (pa.float64(), 2**60),
])
def test_a_value_the_table_refuses_has_no_matrix_and_the_tables_error(kind, value):
    spec = _spec({"x": kind}, request=("x",))
    inputs = read_inputs(spec, _empty(), {"x": [value]})
    assert inputs.matrix() is None
    with pytest.raises(InputError, match="input 'x' must hold"):
        inputs.validate()


def test_a_float_for_an_integer_input_is_left_to_the_table():
    inputs = read_inputs(_spec({"x": pa.int64()}, request=("x",)), _empty(), {"x": [1.5]})
    assert inputs.matrix() is None  # Arrow truncates it: the model gets what the table holds
    assert inputs.table.column(0).to_pylist() == [1]


def _empty() -> OnlineResponse:
    return OnlineResponse(["id"], [[1]], [[P]], [[None]], [None])


def test_a_float32_value_out_of_its_range_goes_through_the_table():
    inputs = read_inputs(_spec({"f32": pa.float32()}), _response({"f32": [1e300]}))
    assert inputs.matrix() is None
    assert inputs.table.column(0).to_pylist() == [float("inf")]


def _fit_data():
    rng = np.random.default_rng(3)
    X = np.column_stack([rng.random(400), rng.random(400), rng.integers(0, 100, 400)])
    y = (X[:, 0] + X[:, 1] + rng.normal(0, 0.2, 400) > 1).astype(int)
    return X, y


def _served_inputs():
    spec = _spec({"a": pa.float32(), "b": pa.float64(), "c": pa.int64()})
    return read_inputs(spec, _response({"a": [0.25, None, 0.75], "b": [0.5, 0.1, None], "c": [3, 50, None]}))


def test_each_tabular_flavor_answers_the_matrix_as_it_answers_the_table(tmp_path):
    X, y = _fit_data()
    gbm = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(X, y).booster_
    xgb = xgboost.XGBClassifier(n_estimators=20).fit(X, y).get_booster()
    predictors = [SklearnPredictor(LogisticRegression().fit(np.nan_to_num(X), y)),
                  LightGBMPredictor(gbm, "gbm.txt"), XGBoostPredictor(xgb, "xgb.ubj")]
    inputs = _served_inputs()
    for predictor in predictors:
        assert predictor.takes_matrix(inputs.spec.columns)
        if isinstance(predictor, SklearnPredictor):  # logistic regression refuses NaN: whole rows only
            whole = read_inputs(inputs.spec, _response({"a": [0.25], "b": [0.5], "c": [3]}))
            assert predictor.predict_matrix(whole.matrix()) == predictor.predict(whole.table)
            continue
        assert predictor.predict_matrix(inputs.matrix()) == predictor.predict(inputs.table)


def test_a_model_that_names_its_features_otherwise_does_not_take_the_matrix():
    X, y = _fit_data()
    import pandas

    frame = pandas.DataFrame(np.nan_to_num(X), columns=["a", "b", "c"])
    assert not SklearnPredictor(LogisticRegression().fit(frame, y)).takes_matrix(("a", "b", "c"))
    gbm = lightgbm.train({"verbose": -1}, lightgbm.Dataset(X, y, feature_name=["c", "b", "a"]), num_boost_round=2)
    predictor = LightGBMPredictor(gbm, "gbm.txt")
    assert not predictor.takes_matrix(("a", "b", "c"))  # the table path reorders its columns
    assert predictor.takes_matrix(("c", "b", "a"))
    generated = lightgbm.train({"verbose": -1}, lightgbm.Dataset(X, y), num_boost_round=2)
    assert LightGBMPredictor(generated, "gbm.txt").takes_matrix(("a", "b", "c"))  # Column_0.. by position


def test_inputs_for_a_model_without_the_matrix_are_checked_on_the_table_alone():
    spec = _spec({"x": pa.int64()}, request=("x",))
    inputs = read_inputs(spec, _empty(), {"x": [7]})
    inputs.validate(matrix=False)
    assert inputs._matrix is False  # not worked out: the model is given the table
    assert inputs.table.column(0).to_pylist() == [7]
    with pytest.raises(InputError, match="input 'x' must hold"):
        read_inputs(spec, _empty(), {"x": [2**70]}).validate(matrix=False)
