"""featurestore.catalog: the registry's own errors leave it as FeatureStoreErrors."""

from datetime import datetime, timezone

import pytest

import registry
from featurestore import errors
from featurestore.catalog import Catalog
from registry import ObjectSpec


def test_a_stale_apply_is_a_feature_store_conflict(tmp_path):
    with Catalog.open(tmp_path / "registry.db") as catalog:
        catalog.put("p", ObjectSpec("entity", "driver", {"join_keys": ["driver_id"]}))
        with pytest.raises(errors.ConflictError, match="revision 1, not the expected 0") as caught:
            catalog.apply("p", [], ["entity"], expected_revision=0)
    assert isinstance(caught.value.__cause__, registry.ConflictError)


def test_every_call_on_a_closed_registry_is_a_feature_store_registry_error(tmp_path):
    catalog = Catalog.open(tmp_path / "registry.db")
    catalog.close()
    now = datetime(2024, 5, 1, tzinfo=timezone.utc)
    calls = [
        lambda: catalog.revision("p"), lambda: catalog.list("p"), lambda: catalog.get("p", "entity", "x"),
        lambda: catalog.history("p", "entity", "x"), lambda: catalog.lineage("p", "entity", "x"),
        lambda: catalog.get_state("p", "k"), lambda: catalog.set_state("p", "k", 1),
        lambda: catalog.put("p", ObjectSpec("entity", "x", {})), lambda: catalog.apply("p", [], ["entity"]),
        lambda: catalog.plan("p", [], ["entity"]),
        lambda: catalog.jobs.list("p"), lambda: catalog.jobs.summary("p"), lambda: catalog.jobs.get("p", 1),
        lambda: catalog.jobs.start("p", "v", "manual", None, now, "me"),
        lambda: catalog.jobs.windows("p", "v"), lambda: catalog.jobs.get_lock("p", "l", 0.0),
        lambda: catalog.jobs.acquire_lock("p", "l", "me", 1.0, 0.0),
    ]
    for call in calls:
        with pytest.raises(errors.RegistryError, match="is closed"):
            call()


def test_a_file_that_is_not_a_registry_cannot_be_opened(tmp_path):
    path = tmp_path / "registry.db"
    path.write_bytes(b"\x00garbage" * 1024)
    with pytest.raises(errors.RegistryError, match="not a database"):
        Catalog.open(path)


def test_wrap_keeps_a_catalog_and_wraps_a_registry(tmp_path):
    with registry.Registry.open(tmp_path / "registry.db") as raw:
        catalog = Catalog.wrap(raw)
        assert Catalog.wrap(catalog) is catalog
        assert catalog.path == raw.path
