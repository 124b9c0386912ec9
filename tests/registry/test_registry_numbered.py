"""Numbered objects, single-object removal, pinned dependencies and transactions."""

from __future__ import annotations

import multiprocessing

import pytest

from registry import InUseError, ObjectSpec, Registry, RegistryError


def _register_many(location: str, count: int, start, out) -> None:
    start.wait()
    with Registry.open(location) as reg:
        for _ in range(count):
            out.put(reg.put_numbered("p", "model_version", "churn/", {"x": 1}).name)


def test_numbers_from_four_processes_are_distinct_and_consecutive(registry_url):
    Registry.open(registry_url).close()
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_register_many, args=(registry_url, 5, start, out)) for _ in range(4)]
    for p in procs:
        p.start()
    start.set()
    names = [out.get(timeout=120) for _ in range(20)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sorted(int(n.split("/")[1]) for n in names) == list(range(1, 21))
    with Registry.open(registry_url) as reg:
        assert len(reg.list("p", "model_version")) == 20
        assert reg.revision("p") == 20


def test_a_removed_number_is_never_given_out_again(registry):
    registry.put_numbered("p", "model_version", "m/", {})
    second = registry.put_numbered("p", "model_version", "m/", {})
    registry.remove("p", "model_version", second.name)
    assert registry.put_numbered("p", "model_version", "m/", {}).name == "m/3"
    # Another prefix counts on its own, and "m/" does not see "mm/".
    assert registry.put_numbered("p", "model_version", "mm/", {}).name == "mm/1"
    assert registry.put_numbered("p", "model_version", "m/", {}).name == "m/4"


def test_remove_keeps_the_given_spec_on_the_tombstone_and_drops_edges(registry):
    registry.put("p", ObjectSpec("model_version", "m/1", {}))
    registry.put("p", ObjectSpec("model_alias", "m@champion", {"version": 1}, (("model_version", "m/1"),)))
    gone = registry.remove("p", "model_alias", "m@champion", {"version": None, "reason": "rollback"})
    assert gone.removed and gone.version == 2
    assert registry.get("p", "model_alias", "m@champion") is None
    assert [o.spec for o in registry.history("p", "model_alias", "m@champion")] == [
        {"version": 1}, {"version": None, "reason": "rollback"}]
    assert registry.lineage("p", "model_version", "m/1") == []
    with pytest.raises(RegistryError, match="does not exist"):
        registry.remove("p", "model_alias", "m@champion")


def test_apply_refuses_to_remove_what_a_pinning_kind_depends_on(registry_url, registry_rows):
    kinds = ("feature_view", "feature_service")
    with Registry.open(registry_url) as reg:
        reg.apply("p", [ObjectSpec("feature_view", "v", {}),
                        ObjectSpec("feature_service", "s", {}, (("feature_view", "v"),))], kinds)
        reg.put("p", ObjectSpec("model_version", "m/1", {}, (("feature_service", "s"),)))
        before = registry_rows()
        with pytest.raises(InUseError, match=r"feature_service 's' \(used by model_version 'm/1'\)"):
            reg.apply("p", [ObjectSpec("feature_view", "v", {})], kinds, pinned_by=("model_version",))
        with pytest.raises(InUseError, match="nothing was changed"):
            reg.remove("p", "feature_service", "s", pinned_by=("model_version",))
        with pytest.raises(InUseError, match="used by model_version 'm/1'"):
            reg.plan("p", [ObjectSpec("feature_view", "v", {})], kinds, pinned_by=("model_version",))
        assert registry_rows() == before
        # Without the pin the same apply goes through.
        assert reg.apply("p", [ObjectSpec("feature_view", "v", {})], kinds).changes


def test_a_failed_transaction_writes_nothing(registry_url, registry_rows):
    with Registry.open(registry_url) as reg:
        reg.put("p", ObjectSpec("model", "m", {}))
        before = registry_rows()
        with pytest.raises(RuntimeError):
            with reg.transaction("p") as tx:
                tx.put_numbered("model_version", "m/", {})
                tx.put(ObjectSpec("model_alias", "m@a", {}))
                raise RuntimeError("boom")
        assert registry_rows() == before
        with reg.transaction("p") as tx:
            assert tx.get("model", "m") is not None
            assert [o.name for o in tx.list("model_version", "m/")] == []
        assert registry_rows() == before  # a read-only transaction does not bump the revision


def test_a_transaction_bumps_only_the_revisions_of_the_kinds_it_wrote(registry):
    registry.apply("p", [ObjectSpec("feature_view", "v", {})], ("feature_view",))
    with registry.transaction("p") as tx:
        tx.put(ObjectSpec("model", "m", {}))
        tx.put_numbered("model_version", "m/", {})
    assert registry.revision("p") == 2
    assert registry.revision("p", ("feature_view",)) == 1
    assert registry.revision("p", ("model", "model_version")) == 2
    registry.put_numbered("p", "model_version", "m/", {})
    registry.remove("p", "model_version", "m/2")
    assert registry.revision("p", "feature_view") == 1 and registry.revision("p", "model_version") == 4
