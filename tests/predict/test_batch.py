"""Batch scoring: ``store.predict`` and ``featurestore predict``."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from featurestore.errors import MissingFeatureError, SchemaError

from .world import COLUMNS, DRIVERS


def test_scored_rows_keep_the_entity_columns_and_order_then_features_and_prediction(world):
    entities = world.entity_df().take([3, 0, 2, 0])
    scored = world.store.predict(world.uri, entities)
    assert scored.column_names == [*entities.column_names, *COLUMNS, "prediction"]
    assert scored.column("driver_id").to_pylist() == [9999, 1001, 1003, 1001]
    expected = world.expected()
    assert scored.column("prediction").to_pylist() == [expected[3], expected[0], expected[2], expected[0]]


def test_chunks_give_the_same_rows_and_report_progress(world):
    seen = []
    chunked = world.store.predict(world.uri, world.entity_df(), batch_rows=3,
                                  progress=lambda label, rows: seen.append((label, rows)))
    assert chunked.equals(world.store.predict(world.uri, world.entity_df()))
    assert seen == [("trip_model/1", 3), ("trip_model/1", 4)]


def test_no_entity_rows_score_to_no_rows(world):
    scored = world.store.predict(world.uri, world.entity_df().slice(0, 0))
    assert scored.num_rows == 0 and scored.column_names[-1] == "prediction"


def test_the_on_missing_policy_applies_to_batch_rows(world):
    defaults = {"conv_rate": 0.25, "fare_sum_1h": 0.0, "expected_fare": 7.5}
    filled = world.store.models.register("batch_defaults", world.model, flavor="python",
                                         training_dataset="trip_training", output="completed",
                                         on_missing="default", defaults=defaults)
    scored = world.store.predict(filled.uri, world.entity_df())
    assert [scored.column(c)[3].as_py() for c in COLUMNS] == [0.25, 0.0, 7.5]
    assert scored.column("prediction").to_pylist() == world.model.predict(scored)
    strict = world.store.models.register("batch_strict", world.model, flavor="python",
                                         training_dataset="trip_training", output="completed", on_missing="error")
    with pytest.raises(MissingFeatureError, match=r"driver_id=9999"):
        world.store.predict(strict.uri, world.entity_df())


@pytest.mark.parametrize("drop, message", [
    (["surge"], r"no column\(s\) 'surge', which model trip_model/1 needs"),
    (["event_timestamp", "driver_id"], r"no column\(s\) 'driver_id', 'event_timestamp'"),
])
def test_missing_entity_columns_are_named(world, drop, message):
    with pytest.raises(SchemaError, match=message):
        world.store.predict(world.uri, world.entity_df().drop_columns(drop))


def test_an_entity_column_the_output_would_add_is_refused(world):
    entities = world.entity_df().append_column("prediction", pa.array([0.0] * len(DRIVERS)))
    with pytest.raises(SchemaError, match=r"already has column\(s\) 'prediction'"):
        world.store.predict(world.uri, entities)


def _cli(world, *args):
    from featurestore.cli import predict_command  # noqa: F401 - registers `featurestore predict`
    from featurestore.cli.main import cli

    return CliRunner().invoke(cli, ["--repo", str(world.repo), "predict", *args])


def test_the_cli_writes_the_scored_rows(world, tmp_path):
    pq.write_table(world.entity_df(), tmp_path / "entities.parquet")
    out = tmp_path / "scores" / "scored.parquet"
    result = _cli(world, "--model", "trip_model", "--entities", str(tmp_path / "entities.parquet"), "--out", str(out),
                  "--batch-rows", "2")
    assert result.exit_code == 0, result.output
    assert "Scored 4 rows with trip_model/1" in result.output
    assert pq.read_table(out).equals(world.store.predict(world.uri, world.entity_df()))
    assert [p.name for p in out.parent.iterdir()] == ["scored.parquet"]


@pytest.mark.parametrize("entities, message", [
    ("absent.parquet", "--entities '{tmp}/absent.parquet' does not exist"),
    ("garbage.parquet", "is not a readable Parquet file"),
    ("no_surge.parquet", "no column(s) 'surge'"),
])
def test_the_cli_names_a_bad_entity_file_and_writes_nothing(world, tmp_path, entities, message):
    (tmp_path / "garbage.parquet").write_text("not parquet")
    pq.write_table(world.entity_df().drop_columns(["surge"]), tmp_path / "no_surge.parquet")
    out = tmp_path / "out" / "scored.parquet"
    result = _cli(world, "--model", world.uri, "--entities", str(tmp_path / entities), "--out", str(out))
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and message.format(tmp=tmp_path) in result.output
    assert not out.exists() and not (out.parent.exists() and list(out.parent.iterdir()))


def test_a_model_that_fails_midway_leaves_no_output(world, tmp_path):
    strict = world.store.models.register("cli_strict", world.model, flavor="python",
                                         training_dataset="trip_training", output="completed", on_missing="error")
    pq.write_table(world.entity_df(), tmp_path / "entities.parquet")  # the unknown driver is the 4th row
    out = tmp_path / "scored.parquet"
    result = _cli(world, "--model", strict.uri, "--entities", str(tmp_path / "entities.parquet"), "--out", str(out),
                  "--batch-rows", "3")
    assert result.exit_code == 1 and "driver_id=9999" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entities.parquet"]


def test_batch_rows_must_be_a_positive_count(world):
    from featurestore.errors import InputError

    with pytest.raises(InputError, match=r"batch_rows must be a positive number of rows, not 0"):
        world.store.predict(world.uri, world.entity_df(), batch_rows=0)
