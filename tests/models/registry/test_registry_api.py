"""``store.models``: versions, URIs, aliases and their history, archive, load, lineage."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

from featurestore import FeatureStore
from featurestore.errors import (
    ArtifactError, InputError, InUseError, ModelError, NotFoundError, SchemaError,
)
from featurestore.models.registry import ARCHIVE_BLOCKERS
from featurestore.types import Float32, Int64

SERVICE = "driver_activity_v1"
FEATURES = ["conv_rate", "acc_rate", "avg_daily_trips"]


def test_register_records_lineage_and_infers_the_signature_from_the_training_set(store, trained, registered):
    _, saved, _ = trained
    v = store.models.get("driver_model/1")
    assert (v.name, v.version, v.uri, v.status, v.flavor) == ("driver_model", 1, "driver_model/1", "ready", "python")
    assert v.aliases == ("champion",)
    assert [(c.name, c.dtype) for c in v.signature.inputs] == [
        ("conv_rate", Float32), ("acc_rate", Float32), ("avg_daily_trips", Int64)]
    assert [(c.name, c.dtype) for c in v.signature.outputs] == [("trip_completed", Int64)]
    assert all(c.nullable for c in v.signature.inputs)  # nullable columns are kept, never dropped
    assert v.training_dataset == {"name": "driver_training", "version": saved["version"], "sha256": saved["sha256"]}
    assert v.feature_service == {"name": SERVICE, "version": 1}
    assert v.features == ("driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate",
                          "driver_hourly_stats_fresh:avg_daily_trips")
    assert v.feature_view_versions == {"driver_hourly_stats": 1, "driver_hourly_stats_fresh": 1}
    assert (v.metrics, v.params, v.tags) == ({"auc": 0.71}, {"steps": 50}, {"team": "rides"})
    assert v.artifact.startswith("sha256:") and len(v.artifact) == 71
    assert v.code is None  # the repo is not a git checkout


def test_lineage_walks_from_the_source_to_the_alias_both_ways(store, registered):
    reg, project = store.registry, store.project
    up = {(e.from_kind, e.from_name, e.to_kind, e.to_name)
          for e in reg.lineage(project, "model_version", "driver_model/1", "upstream")}
    assert ("data_source", "driver_hourly_stats_source", "feature_view", "driver_hourly_stats") in up
    assert ("feature_view", "driver_hourly_stats", "feature_service", SERVICE) in up
    assert ("feature_service", SERVICE, "model_version", "driver_model/1") in up
    assert ("saved_dataset", "driver_training", "model_version", "driver_model/1") in up
    down = {(e.from_kind, e.from_name, e.to_kind, e.to_name)
            for e in reg.lineage(project, "data_source", "driver_hourly_stats_source", "downstream")}
    assert ("feature_view", "driver_hourly_stats", "saved_dataset", "driver_training") in down
    assert ("saved_dataset", "driver_training", "model_version", "driver_model/1") in down
    assert ("model_version", "driver_model/1", "model_alias", "driver_model@champion") in down


def test_versions_count_from_one_per_model(store, trained):
    _, saved, model = trained
    numbers = [store.models.register(name, model, features=SERVICE).version for name in ("a", "a", "b", "a")]
    assert numbers == [1, 2, 1, 3]
    assert [v.uri for v in store.models.versions("a")] == ["a/1", "a/2", "a/3"]


def test_every_uri_form_names_the_same_version(store, registered):
    assert store.models.get("driver_model") == store.models.get("driver_model@champion") \
        == store.models.get("driver_model/1")


@pytest.mark.parametrize("uri, error, message", [
    ("driver_model/0", InputError, "not a version number"),
    ("driver_model/x", InputError, "not a version number"),
    ("driver model", InputError, "is not valid"),
    ("driver_model@1st", InputError, "is not valid"),
    ("", InputError, "not valid"),
    ("driver_modle/1", NotFoundError, "did you mean 'driver_model'"),
    ("driver_model@champoin", NotFoundError, "did you mean 'champion'"),
    ("driver_model@staging", NotFoundError, "its aliases: champion"),
    ("driver_model/7", NotFoundError, "it has versions 1 to 1"),
])
def test_a_bad_uri_or_unknown_name_is_a_clear_error(store, registered, uri, error, message):
    with pytest.raises(error, match=message):
        store.models.get(uri)


def test_a_bare_name_without_champion_says_how_to_name_a_version(store, trained):
    store.models.register("m", trained[2], features=SERVICE)
    with pytest.raises(NotFoundError, match=r"alias 'champion' in model 'm'; it has no aliases; name a version"):
        store.models.load("m")


def test_load_predicts_like_the_in_memory_model_through_the_signature(store, trained, registered):
    table, _, model = trained
    loaded = store.models.load("driver_model@champion")
    # Extra columns (keys, label, timestamps) are ignored and the order comes from the signature.
    shuffled = table.select(["trip_completed", "avg_daily_trips", "driver_id", "acc_rate", "conv_rate"])
    assert loaded.predict(shuffled) == model.predict(table)
    assert loaded.predict({n: shuffled.column(n) for n in shuffled.column_names}) == model.predict(table)
    with pytest.raises(SchemaError, match="missing input column 'acc_rate'"):
        loaded.predict(table.drop_columns(["acc_rate"]))
    with pytest.raises(SchemaError, match="'conv_rate' has type String"):
        loaded.predict(table.set_column(table.schema.get_field_index("conv_rate"), "conv_rate",
                                        pa.array(["x"] * table.num_rows)))


def test_a_tampered_artifact_is_refused_on_load(store, trained):
    from sklearn.linear_model import LogisticRegression

    table, _, _ = trained
    data = table.select(FEATURES).to_pandas().fillna(0)
    estimator = LogisticRegression().fit(data.to_numpy(), table.column("trip_completed").to_numpy())
    version = store.models.register("sk", estimator, features=SERVICE)
    assert version.flavor == "sklearn"
    clean = store.models.load("sk/1").predict(pa.Table.from_pandas(data, preserve_index=False))
    assert clean == pytest.approx(estimator.predict_proba(data.to_numpy())[:, 1].tolist())
    objects = [p for p in (Path(store.config.artifacts) / "objects").rglob("*") if p.is_file()]
    model_file = max(objects, key=lambda p: p.stat().st_size)  # the .skops file, not the manifest
    model_file.chmod(0o644)
    body = model_file.read_bytes()
    model_file.write_bytes(body[:100] + bytes([body[100] ^ 0xFF]) + body[101:])
    with pytest.raises(ArtifactError, match="model sk version 1"):
        store.models.load("sk/1")


def test_alias_moves_are_atomic_and_every_move_is_history(store, trained, registered):
    model = trained[2]
    store.models.register("driver_model", model, features=SERVICE)
    store.models.set_alias("driver_model", "champion", 2, reason="better auc")
    store.models.set_alias("driver_model", "champion", 2, reason="again")  # no move, no entry
    assert store.models.get("driver_model").version == 2
    store.models.set_alias("driver_model", "champion", "1", reason="rollback")
    move = store.models.delete_alias("driver_model", "champion", reason="retired")
    assert (move.previous, move.version, move.reason) == (1, None, "retired")
    history = store.models.alias_history("driver_model", "champion")
    assert [(m.previous, m.version, m.reason) for m in history] == [
        (None, 1, "first"), (1, 2, "better auc"), (2, 1, "rollback"), (1, None, "retired")]
    assert [m.at for m in history] == sorted(m.at for m in history)
    with pytest.raises(NotFoundError, match="alias 'champion'"):
        store.models.get("driver_model@champion")
    with pytest.raises(NotFoundError, match="alias 'champion'"):
        store.models.delete_alias("driver_model", "champion")


def test_bad_alias_moves_are_refused_and_change_nothing(store, registered, registry_snapshot):
    before = registry_snapshot(store.registry.path)
    with pytest.raises(NotFoundError, match="it has versions 1 to 1"):
        store.models.set_alias("driver_model", "champion", 5)
    with pytest.raises(NotFoundError, match="unknown model 'nope'"):
        store.models.set_alias("nope", "champion", 1)
    with pytest.raises(InputError, match="alias '2x' is not valid"):
        store.models.set_alias("driver_model", "2x", 1)
    with pytest.raises(InputError, match="not a version number"):
        store.models.set_alias("driver_model", "champion", 0)
    assert registry_snapshot(store.registry.path) == before


def test_archive_is_refused_while_an_alias_points_at_the_version(store, trained, registered, registry_snapshot):
    assert ARCHIVE_BLOCKERS == ("model_alias", "rollout")
    store.models.set_alias("driver_model", "challenger", 1)
    before = registry_snapshot(store.registry.path)
    with pytest.raises(InUseError, match="driver_model@challenger, driver_model@champion point"):
        store.models.archive("driver_model/1")
    assert registry_snapshot(store.registry.path) == before
    store.models.register("driver_model", trained[2], features=SERVICE)
    store.models.set_alias("driver_model", "champion", 2)
    store.models.delete_alias("driver_model", "challenger")
    archived = store.models.archive("driver_model/1")
    assert archived.status == "archived" and archived.aliases == ()
    with pytest.raises(InputError, match="is archived"):
        store.models.set_alias("driver_model", "champion", 1)
    # Still readable and loadable by number: what served yesterday can be inspected today.
    assert store.models.load("driver_model/1").predict(trained[0])
    assert store.models.get("driver_model/1").training_dataset["name"] == "driver_training"


def test_list_versions_and_search_carry_aliases(store, trained, registered):
    store.models.register("driver_model", trained[2], features=SERVICE, tags={"stage": "test"})
    store.models.register("other", trained[2], features=SERVICE)
    store.models.set_alias("driver_model", "challenger", 2)
    listed = {m.name: m for m in store.models.list()}
    assert listed["driver_model"].latest_version == 2
    assert listed["driver_model"].aliases == {"challenger": 2, "champion": 1}
    assert listed["other"].aliases == {}
    assert [(v.uri, v.aliases) for v in store.models.versions("driver_model")] == [
        ("driver_model/1", ("champion",)), ("driver_model/2", ("challenger",))]
    assert [v.uri for v in store.models.search(alias="challenger")] == ["driver_model/2"]
    assert [v.uri for v in store.models.search(tag="stage=test")] == ["driver_model/2"]
    assert [v.uri for v in store.models.search(tag="team")] == ["driver_model/1", "driver_model/2"]
    assert [(v.uri, v.aliases) for v in store.models.search(name="driver")] == [
        ("driver_model/1", ("champion",)), ("driver_model/2", ("challenger",))]


def test_removing_a_service_a_version_depends_on_is_refused_and_nothing_changes(store, registered, repo, registry_snapshot):
    definitions = repo / "features" / "driver_stats.py"
    text = definitions.read_text()
    definitions.write_text(text[: text.index("driver_activity_v1 = FeatureService(")])
    before = registry_snapshot(store.registry.path)
    with pytest.raises(InUseError, match=r"feature_service 'driver_activity_v1' \(used by model_version "
                                         r"'driver_model/1'\).*nothing was changed"):
        store.apply()
    with pytest.raises(InUseError, match="driver_model/1"):  # plan says so before apply is tried
        store.plan()
    assert registry_snapshot(store.registry.path) == before
    assert store.get_feature_service(SERVICE).name == SERVICE


def test_deleting_a_saved_dataset_a_version_depends_on_is_refused(store, trained, registered, registry_snapshot):
    import polars as pl

    before = registry_snapshot(store.registry.path)
    with pytest.raises(InUseError, match=r"saved_dataset 'driver_training' \(used by model_version "
                                         r"'driver_model/1'\).*nothing was changed"):
        store.delete_saved_dataset("driver_training")
    assert registry_snapshot(store.registry.path) == before
    # A dataset no model was trained on goes; its history stays.
    events = pl.from_arrow(trained[0].select(["driver_id", "event_timestamp"]).slice(0, 5))
    store.get_historical_features(events, SERVICE).save("scratch")
    store.delete_saved_dataset("scratch")
    assert [d["name"] for d in store.list_saved_datasets()] == ["driver_training"]
    assert store.registry.history(store.project, "saved_dataset", "scratch")[-1].removed
    with pytest.raises(NotFoundError, match="did you mean 'driver_training'"):
        store.delete_saved_dataset("driver_trainin")


def test_bad_registrations_get_a_clear_error_and_change_nothing(store, trained, repo, registry_snapshot):
    table, saved, model = trained
    artifacts = Path(store.config.artifacts)

    class Local:  # defined inside a function: cannot be imported when loading
        def predict(self, features):
            return [0] * features.num_rows

    cases = [
        (dict(name="m", model=Local(), features=SERVICE), ModelError, "inside a function"),
        (dict(name="m", model=model, features=SERVICE, flavor="sklearn"), ModelError, "is not a sklearn model"),
        (dict(name="m", model=model, features=SERVICE, flavor="pytorch"), NotFoundError, "unknown flavor 'pytorch'"),
        (dict(name="m", model=object(), features=SERVICE), InputError, "no flavor saves"),
        (dict(name="m", model=model, features="driver_activity_v2"), NotFoundError,
         "did you mean 'driver_activity_v1'"),
        (dict(name="m", model=model, features=SERVICE, training_dataset="driver_trainin"), NotFoundError,
         "did you mean 'driver_training'"),
        (dict(name="m", model=model, features=SERVICE, training_dataset="driver_training/9"), NotFoundError,
         "it has versions 1"),
        (dict(name="m", model=model), InputError, "needs features="),
        (dict(name="m/2", model=model, features=SERVICE), InputError, "model name 'm/2' is not valid"),
        (dict(name="m", model=model, features=SERVICE, metrics={"auc": "high"}), InputError,
         "metrics must be numbers"),
        (dict(name="m", model=model, features=SERVICE, training_dataset=saved, output="label"), SchemaError,
         "no column 'label'"),
        (dict(name="m", model=model, features=["driver_hourly_stats:conv_rate"], output="label"), InputError,
         "types of 'label' are unknown"),
    ]
    before = registry_snapshot(store.registry.path)
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            store.models.register(**kwargs)
    assert registry_snapshot(store.registry.path) == before
    assert not artifacts.exists() or not any(artifacts.rglob("*"))


def test_signature_without_a_training_set_comes_from_the_feature_views(store, trained):
    version = store.models.register("m", trained[2], features=["driver_hourly_stats:acc_rate"],
                                    request_fields={"amount": "Float64"}, output=("label", Int64))
    assert [(c.name, str(c.dtype)) for c in version.signature.inputs] == [("acc_rate", "Float32"),
                                                                         ("amount", "Float64")]
    assert version.request_fields == ("amount",)
    assert version.feature_service is None
    assert {(e.from_kind, e.from_name) for e in store.registry.lineage(store.project, "model_version", "m/1",
                                                                       "upstream")} >= {
        ("feature_view", "driver_hourly_stats"), ("model", "m")}


def test_a_git_checkout_records_the_commit_and_whether_it_was_dirty(repo, trained):
    def git(*args):
        return subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=repo,
                              check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    git("add", "features", "featurestore.yaml")
    git("commit", "-qm", "repo")
    with FeatureStore(repo_path=repo) as store:
        clean = store.models.register("m", trained[2], features=SERVICE)
        assert clean.code == {"commit": git("rev-parse", "HEAD"), "dirty": False}
        (repo / "features" / "driver_stats.py").write_text((repo / "features" / "driver_stats.py").read_text()
                                                           + "\n# edited\n")
        assert store.models.register("m", trained[2], features=SERVICE).code["dirty"] is True


def test_an_mlflow_directory_registers_without_mlflow(store, trained, tmp_path):
    import pickle

    from sklearn.linear_model import LogisticRegression

    table = trained[0]
    frame = table.select(FEATURES).to_pandas().fillna(0)
    data = frame.to_numpy()
    estimator = LogisticRegression().fit(data, table.column("trip_completed").to_numpy())
    folder = tmp_path / "mlflow_model"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps(estimator))
    (folder / "MLmodel").write_text("flavors:\n  sklearn:\n    pickled_model: model.pkl\n"
                                    "    serialization_format: cloudpickle\nrun_id: abc123\n")
    with pytest.raises(ModelError, match="trusted=True"):
        store.models.register("ml", folder, features=SERVICE)
    version = store.models.register("ml", folder, features=SERVICE, trusted=True)
    assert version.flavor == "sklearn" and version.flavor_meta["source"]["run_id"] == "abc123"
    predicted = store.models.load("ml/1", trusted=True).predict(pa.Table.from_pandas(frame, preserve_index=False))
    assert predicted == pytest.approx(estimator.predict_proba(data)[:, 1].tolist())


def test_a_models_description_tags_and_owner_can_change_without_touching_versions(store, registered):
    model = store.models.update_model("driver_model", description="ranks drivers", owner="rides-team",
                                      tags={"tier": "1"})
    assert (model.description, model.owner, model.tags) == ("ranks drivers", "rides-team", {"tier": "1"})
    assert model.latest_version == 1 and model.aliases == {"champion": 1}
    assert store.models.get("driver_model/1") == dataclasses.replace(registered, aliases=("champion",))
    assert [v.uri for v in store.models.search(tag="tier=1")] == ["driver_model/1"]


def test_a_training_set_whose_file_changed_is_refused(store, trained, registry_snapshot):
    from featurestore.errors import IntegrityError

    _, saved, model = trained
    path = store.config.offline_store / saved["path"]
    path.chmod(0o644)
    path.write_bytes(path.read_bytes() + b"\0")
    before = registry_snapshot(store.registry.path)
    with pytest.raises(IntegrityError, match="saved dataset 'driver_training' version 1"):
        store.models.register("m", model, features=SERVICE, training_dataset="driver_training/1")
    assert registry_snapshot(store.registry.path) == before


def test_each_version_points_at_the_saved_dataset_version_it_names(store, trained):
    import polars as pl

    table, first, model = trained
    fewer = pl.from_arrow(table.select(["driver_id", "event_timestamp", "trip_completed"]).slice(0, 10))
    second = store.get_historical_features(fewer, SERVICE).save("driver_training")
    assert second["version"] == 2 and second["sha256"] != first["sha256"]
    pinned = store.models.register("m", model, features=SERVICE, training_dataset="driver_training/1")
    latest = store.models.register("m", model, features=SERVICE, training_dataset="driver_training")
    assert (pinned.training_dataset["version"], pinned.training_dataset["sha256"]) == (1, first["sha256"])
    assert (latest.training_dataset["version"], latest.training_dataset["sha256"]) == (2, second["sha256"])
