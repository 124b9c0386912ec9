"""The shared step of predictions: what a version reads, and its input table from an
online answer with the version's on_missing policy applied."""

from __future__ import annotations

import dataclasses
import json

import pyarrow as pa
import pytest
from click.testing import CliRunner

from featurestore.errors import InputError, MissingFeatureError
from featurestore.models.inputs import fill_missing, input_spec, model_inputs
from featurestore.models.records import version_record
from featurestore.models.signature import ColumnSpec, Signature
from featurestore.types import Array, Float64, Int64

from .world import COLUMNS, DRIVERS, FEATURES

DEFAULTS = {"conv_rate": 0.25, "fare_sum_1h": 0.0, "expected_fare": 7.5}


def _read(world, version=None):
    spec = input_spec(version or world.version)
    return world.store.get_online_features(list(spec.features), world.entity_columns(),
                                           full_feature_names=spec.full_feature_names)


def _register(world, name, **options):
    return world.store.models.register(name, world.model, flavor="python", training_dataset="trip_training",
                                       output="completed", **options)


def test_a_version_reads_its_own_features_in_signature_order(world):
    spec = input_spec(world.version)
    assert spec.features == tuple(FEATURES) and spec.columns == tuple(COLUMNS)
    assert spec.feature_columns == tuple(COLUMNS) and spec.request_fields == ()
    assert spec.on_missing == "null" and world.version.on_missing == "null"
    assert spec.full_feature_names is False
    assert input_spec(world.store.models.get(world.uri)) is spec  # built once per version


def test_the_input_table_has_the_signature_columns_types_and_the_nulls_of_missing_features(world):
    response = _read(world)
    table = model_inputs(world.version, response)
    assert table.column_names == COLUMNS
    assert table.schema == pa.schema([pa.field(c.name, c.dtype.to_arrow()) for c in world.version.signature.inputs])
    for name in COLUMNS:
        assert table.column(name).to_pylist() == response.to_arrow().column(name).to_pylist()
    assert [table.column(n)[3].as_py() for n in COLUMNS] == [None, None, None]  # driver 9999, unknown
    assert all(table.column(n)[0].as_py() is not None for n in COLUMNS)


def test_on_missing_error_names_the_entity_the_feature_and_why(world):
    strict = _register(world, "strict_model", on_missing="error")
    assert strict.on_missing == "error" and strict.to_dict()["on_missing"] == "error"
    with pytest.raises(MissingFeatureError) as caught:
        model_inputs(strict, _read(world, strict))
    error = caught.value
    assert isinstance(error, InputError)  # the HTTP layer answers 422
    assert (error.feature, error.entity, error.status, error.rows) == ("conv_rate", {"driver_id": 9999}, "NOT_FOUND", 1)
    assert "strict_model/1" in str(error) and "driver_id=9999" in str(error) and "'conv_rate'" in str(error)
    known = world.store.get_online_features(FEATURES, {"driver_id": DRIVERS[:3], "trip_km": [1.0] * 3,
                                                       "surge": [1.0] * 3})
    assert model_inputs(strict, known).num_rows == 3


def test_on_missing_default_fills_each_input_with_its_default(world):
    filled = _register(world, "default_model", on_missing="default", defaults=DEFAULTS)
    assert [c.default for c in filled.signature.inputs] == [0.25, 0.0, 7.5]
    response = _read(world, filled)
    table = model_inputs(filled, response)
    assert [table.column(n)[3].as_py() for n in COLUMNS] == [0.25, 0.0, 7.5]
    for name in COLUMNS:  # present values are untouched
        assert table.column(name).to_pylist()[:3] == response.to_arrow().column(name).to_pylist()[:3]


def test_batch_rows_follow_the_same_policies(world):
    training = world.store.get_historical_features(world.entity_df(), FEATURES).to_arrow()
    filled = _register(world, "default_batch", on_missing="default", defaults=DEFAULTS)
    out = fill_missing(input_spec(filled), training, ["driver_id", "event_timestamp"])
    assert [out.column(n)[3].as_py() for n in COLUMNS] == [0.25, 0.0, 7.5]
    assert fill_missing(input_spec(world.version), training, ["driver_id"]) is training
    strict = _register(world, "strict_batch", on_missing="error")
    with pytest.raises(MissingFeatureError, match=r"strict_batch/1: input feature 'conv_rate' is missing "
                                                  r"\(NULL_VALUE\) for driver_id=9999, event_timestamp="):
        fill_missing(input_spec(strict), training, ["driver_id", "event_timestamp"])


def test_request_field_inputs_come_from_the_request(world):
    version = _register(world, "with_request", request_fields=["trip_km"])
    spec = input_spec(version)
    assert spec.request_fields == ("trip_km",) and spec.columns == (*COLUMNS, "trip_km")
    response = _read(world, version)
    table = model_inputs(version, response, world.entity_columns())
    assert table.column("trip_km").to_pylist() == world.entity_columns()["trip_km"]
    rows = [dict(zip(world.entity_columns(), r)) for r in zip(*world.entity_columns().values())]
    assert model_inputs(version, response, rows).equals(table)
    with pytest.raises(InputError, match=r"takes request field 'trip_km'"):
        model_inputs(version, response, {"driver_id": DRIVERS})


@pytest.mark.parametrize("options, message", [
    ({"on_missing": "default"}, r"needs a default for every input; 'conv_rate', 'fare_sum_1h', 'expected_fare'"),
    ({"on_missing": "default", "defaults": {"conv_rate": 0.1}}, r"'fare_sum_1h', 'expected_fare' have none"),
    ({"on_missing": "zero"}, r"on_missing must be one of error, null, default, not 'zero'"),
    ({"defaults": {"conv_rat": 0.1}}, r"'conv_rat' \(did you mean 'conv_rate'\?\)"),
    ({"defaults": {"conv_rate": "high"}}, r"default of input 'conv_rate' must be a Float32 value"),
    ({"defaults": {"conv_rate": True}}, r"default of input 'conv_rate' must be a Float32 value"),
])
def test_a_bad_policy_or_default_is_refused_at_registration_and_writes_nothing(world, options, message):
    before = len(world.store.models.versions("trip_model"))
    with pytest.raises(InputError, match=message):
        world.store.models.register("trip_model", world.model, flavor="python", training_dataset="trip_training",
                                    output="completed", **options)
    assert len(world.store.models.versions("trip_model")) == before


def test_defaults_round_trip_and_records_without_them_still_load(world):
    spec = ColumnSpec("x", Array(Int64), default=[1, 2])
    assert ColumnSpec.from_dict(spec.to_dict()) == spec and spec.to_dict()["default"] == [1, 2]
    assert "default" not in ColumnSpec("y", Float64).to_dict()
    assert ColumnSpec("z", Float64, default=1).default == 1.0
    old = {"inputs": [{"name": "a", "type": "Float64", "nullable": True}], "outputs": []}
    assert Signature.from_dict(old).inputs[0].default is None
    stored = world.store.registry.get(world.store.project, "model_version", world.uri)
    before = {k: v for k, v in stored.spec.items() if k != "on_missing"}  # written before the policy existed
    assert version_record(dataclasses.replace(stored, spec=before)).on_missing == "null"


def test_the_cli_registers_a_policy_with_defaults(world):
    from featurestore.cli import model_commands  # noqa: F401 - registers `featurestore models`
    from featurestore.cli.main import cli

    (world.repo / "flat_model.py").write_text("def flat(features):\n    return [0.5] * features.num_rows\n")
    args = ["--repo", str(world.repo), "models", "register", "flat", "flat_model:flat", "--flavor", "python",
            "--training-dataset", "trip_training", "--output", "completed", "--on-missing", "default"]
    defaults = [a for name, value in DEFAULTS.items() for a in ("--default", f"{name}={value}")]
    refused = CliRunner().invoke(cli, args + defaults[:2])
    assert refused.exit_code == 1 and "'fare_sum_1h', 'expected_fare' have none" in refused.output
    assert CliRunner().invoke(cli, args + defaults).exit_code == 0
    shown = CliRunner().invoke(cli, ["--repo", str(world.repo), "models", "show", "flat/1", "--json"])
    data = json.loads(shown.output)
    assert data["on_missing"] == "default"
    assert [c.get("default") for c in data["signature"]["inputs"]] == [0.25, 0.0, 7.5]
    table = CliRunner().invoke(cli, ["--repo", str(world.repo), "models", "show", "flat/1"]).output
    assert "conv_rate:Float32=0.25" in table and "default" in table


def test_a_value_past_its_ttl_is_missing(world):
    from datetime import timedelta

    from featurestore import FeatureStore
    from featurestore.config import load_config

    later = world.now + timedelta(days=2)  # past driver_hourly_stats' ttl of one day
    strict = _register(world, "strict_ttl", on_missing="error")
    filled = _register(world, "default_ttl", on_missing="default", defaults=DEFAULTS)
    with FeatureStore(config=load_config(world.repo, env={}), clock=lambda: later.timestamp()) as store:
        response = store.get_online_features(FEATURES, world.entity_columns())
    assert response.statuses[response.feature_names.index("conv_rate")][0] == "OUTSIDE_MAX_AGE"
    with pytest.raises(MissingFeatureError, match=r"'conv_rate' is missing \(OUTSIDE_MAX_AGE\) for driver_id=1001 "
                                                  r"\(and 3 more rows\)"):
        model_inputs(strict, response)
    assert model_inputs(filled, response).column("conv_rate").to_pylist() == [0.25] * 4
