"""Feast definitions that load: renamed spellings as aliases, Feast's options accepted or
refused with what to do, Project, unsupported Feast objects named as unsupported, and
plan reporting every problem of a repo in one run."""

from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq
import pytest

from featurestore import Entity, FeatureStore, FeatureView, Field, FileSource, Project
from featurestore.errors import DefinitionError, SchemaError
from featurestore.scaffold import init_repo
from featurestore.types import Float32

NOW = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
DRIVER = Entity(name="driver", join_keys=["driver_id"])


def view(**options):
    return FeatureView(name="stats", entities=[DRIVER], schema=[Field("conv_rate", Float32)],
                       source=FileSource(path="data/driver_stats.parquet"), ttl=timedelta(days=1), **options)


def test_feasts_timestamp_column_spellings_are_aliases():
    source = FileSource(name="s", path="data/x.parquet", event_timestamp_column="ts",
                        created_timestamp_column="created")
    assert (source.timestamp_field, source.created_timestamp_field) == ("ts", "created")
    assert source == FileSource(name="s", path="data/x.parquet", timestamp_field="ts", created_timestamp_field="created")
    with pytest.raises(DefinitionError, match="give created_timestamp_field or Feast's created_timestamp_column"):
        FileSource(path="x.parquet", created_timestamp_field="a", created_timestamp_column="b")


def test_field_mapping_is_refused_with_what_to_do():
    with pytest.raises(DefinitionError, match="field_mapping is not supported; rename the columns"):
        FileSource(path="x.parquet", field_mapping={"a": "b"})


def test_enable_validation_is_accepted_and_only_the_latest_version_exists():
    assert view(enable_validation=True) == view() == view(version="latest")
    with pytest.raises(DefinitionError, match="version='v2' is not supported.*remove version="):
        view(version="v2")


def test_unsupported_feast_objects_are_named_unsupported():
    with pytest.raises(ImportError, match="LabelView is a Feast object this store does not support"):
        from featurestore import LabelView  # noqa: F401
    with pytest.raises(ImportError, match="Decimal is a Feast object this store does not support: use Float64"):
        from featurestore.types import Decimal  # noqa: F401
    with pytest.raises(ImportError, match="cannot import name 'Nonsense'"):
        from featurestore import Nonsense  # noqa: F401


BROKEN_MODULE = "from featurestore import StreamFeatureView\n"
PROJECT_MODULE = "from featurestore import Project\nproject = Project(name='{name}', description='drivers')\n"


def test_plan_reports_every_problem_of_the_repo_in_one_run(tmp_path):
    repo = init_repo(tmp_path / "repo", project="every_error", now=NOW)
    (repo / "features" / "streams.py").write_text(BROKEN_MODULE)
    (repo / "features" / "project.py").write_text(PROJECT_MODULE.format(name="other_name"))
    (repo / "features" / "bad_view.py").write_text(
        "from datetime import timedelta\n"
        "from featurestore import FeatureView, Field, FileSource\n"
        "from features.driver_stats import driver\n"
        "from featurestore.types import Float32\n"
        "ghost = FeatureView(name='ghost', entities=[driver], schema=[Field('nope', Float32)], ttl=timedelta(days=1),\n"
        "                    source=FileSource(path='data/driver_stats.parquet'))\n")
    with FeatureStore(repo_path=repo, clock=lambda: NOW.timestamp()) as store:
        with pytest.raises(DefinitionError) as info:
            store.plan()
        message = str(info.value)
        assert message.startswith("3 problems in the repo") and "\n  [3] " in message
        assert "StreamFeatureView is a Feast object this store does not support" in message
        assert "Project 'other_name' but featurestore.yaml's project is 'every_error'" in message
        assert "no schema column 'nope'" in message
        with pytest.raises(DefinitionError, match="3 problems"):
            store.apply()
        assert store.registry.list(store.project) == []  # nothing was applied


def test_several_problems_of_one_kind_keep_their_kind(tmp_path):
    repo = init_repo(tmp_path / "repo", project="one_kind", now=NOW)
    data = repo / "data" / "driver_stats.parquet"
    pq.write_table(pq.read_table(data).drop_columns(["acc_rate"]), data)
    with FeatureStore(repo_path=repo, clock=lambda: NOW.timestamp()) as store:
        with pytest.raises(SchemaError, match=r"(?s)^2 problems.*driver_hourly_stats'.*driver_hourly_stats_fresh'"):
            store.plan()


def test_a_project_object_naming_the_configured_project_applies(tmp_path):
    repo = init_repo(tmp_path / "repo", project="named", now=NOW)
    (repo / "features" / "project.py").write_text(PROJECT_MODULE.format(name="named"))
    with FeatureStore(repo_path=repo, clock=lambda: NOW.timestamp()) as store:
        store.apply()
        assert "driver_hourly_stats" in store.contents.feature_views
    assert Project("named").description == ""
