"""Atomic applies: rollback on failure, and writers in several processes and threads."""

from __future__ import annotations

import multiprocessing
import threading

import pytest

from registry import ConflictError, ObjectSpec, Registry, RegistryError

KINDS = ("entity", "feature_view")


@pytest.fixture
def seeded(registry_url):
    with Registry.open(registry_url) as reg:
        reg.apply(
            "p",
            [
                ObjectSpec("entity", "driver", {"k": 1}),
                ObjectSpec("feature_view", "a", {"ttl": 1}, (("entity", "driver"),)),
                ObjectSpec("feature_view", "b", {"ttl": 1}),
            ],
            KINDS,
        )
        reg.set_state("p", "wm", 1)
    return registry_url


def test_non_json_spec_on_a_later_object_leaves_everything_as_before(seeded, registry_rows):
    before = registry_rows()
    with Registry.open(seeded) as reg:
        with pytest.raises(RegistryError, match="spec of feature_view 'b' is not JSON"):
            reg.apply(
                "p",
                [
                    ObjectSpec("entity", "driver", {"k": 2}),
                    ObjectSpec("feature_view", "a", {"ttl": 2}),
                    ObjectSpec("feature_view", "b", {"ttl": object()}),
                ],
                KINDS,
            )
        assert reg.revision("p") == 1
    assert registry_rows() == before


TRIGGERS = {
    "sqlite": "CREATE TRIGGER fail_on_c BEFORE INSERT ON objects WHEN NEW.name = 'c' "
              "BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    "postgresql": "CREATE FUNCTION fail_on_c() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                  "RAISE check_violation USING MESSAGE = 'injected failure'; END $$; "
                  "CREATE TRIGGER fail_on_c BEFORE INSERT ON objects FOR EACH ROW "
                  "WHEN (NEW.name = 'c') EXECUTE FUNCTION fail_on_c()",
}


def test_database_failure_after_some_writes_rolls_back(seeded, registry_sql, registry_rows):
    # A trigger makes the 3rd insert fail after the first two rows were written,
    # inside the same transaction.
    registry_sql(TRIGGERS["postgresql" if "://" in seeded else "sqlite"])
    before = registry_rows()
    with Registry.open(seeded) as reg:
        with pytest.raises(RegistryError, match="injected failure"):
            reg.apply(
                "p",
                [
                    ObjectSpec("entity", "driver", {"k": 2}),
                    ObjectSpec("feature_view", "a", {"ttl": 2}),
                    ObjectSpec("feature_view", "c", {"ttl": 2}),
                ],
                KINDS,
            )
        # The connection is usable afterwards and sees the old state.
        assert reg.revision("p") == 1
        assert reg.get("p", "feature_view", "b") is not None
        assert reg.lineage("p", "entity", "driver") != []
    assert registry_rows() == before


def test_stale_expected_revision_is_a_conflict(seeded):
    with Registry.open(seeded) as reg:
        with pytest.raises(ConflictError, match="revision 1, not the expected 0"):
            reg.apply("p", [], KINDS, expected_revision=0)
        result = reg.apply("p", [], KINDS, expected_revision=1)
        assert result.revision == 2


def _apply_in_child(path, prefix, expected_revision, barrier, results):
    objects = [
        ObjectSpec("feature_view", f"{prefix}{i:03d}", {"i": i, "pad": "x" * 200})
        for i in range(150)
    ]
    with Registry.open(path) as reg:
        barrier.wait()
        try:
            result = reg.apply("p", objects, KINDS, expected_revision=expected_revision)
            results.put((prefix, "ok", result.revision))
        except ConflictError:
            results.put((prefix, "conflict", None))


def _race(path, expected_revision):
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=_apply_in_child, args=(path, prefix, expected_revision, barrier, results)
        )
        for prefix in ("a", "b")
    ]
    for p in procs:
        p.start()
    outcomes = sorted(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    return outcomes


def test_two_processes_with_expected_revision_one_wins_one_conflicts(registry_url):
    path = registry_url
    Registry.open(path).close()
    outcomes = _race(path, expected_revision=0)
    assert sorted(o[1] for o in outcomes) == ["conflict", "ok"]
    winner = next(o[0] for o in outcomes if o[1] == "ok")
    with Registry.open(path) as reg:
        assert reg.revision("p") == 1
        names = [o.name for o in reg.list("p")]
        assert len(names) == 150 and all(n.startswith(winner) for n in names)


def test_two_processes_without_expected_revision_apply_one_after_the_other(registry_url):
    path = registry_url
    Registry.open(path).close()
    outcomes = _race(path, expected_revision=None)
    assert [o[1] for o in outcomes] == ["ok", "ok"]
    assert sorted(o[2] for o in outcomes) == [1, 2]
    last = next(o[0] for o in outcomes if o[2] == 2)
    first = "b" if last == "a" else "a"
    with Registry.open(path) as reg:
        assert reg.revision("p") == 2
        names = [o.name for o in reg.list("p")]
        assert len(names) == 150 and all(n.startswith(last) for n in names)
        # The first writer's objects were added at revision 1 and removed at 2.
        history = reg.history("p", "feature_view", f"{first}000")
        assert [(o.version, o.revision, o.removed) for o in history] == [
            (1, 1, False), (2, 2, True),
        ]


def test_one_registry_shared_by_threads(registry):
    errors = []
    with registry as reg:

        def work(n):
            try:
                for i in range(20):
                    reg.put("p", ObjectSpec("model", f"m{n}", {"i": i}))
                    reg.list("p")
            except Exception as exc:  # noqa: BLE001 - surfaced by the assert below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert reg.revision("p") == 80
        assert [o.version for o in reg.list("p")] == [20, 20, 20, 20]
