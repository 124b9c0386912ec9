"""``pytest -n 2``: the suite on two processes (pytest-xdist), and which tests share one.

Plain ``pytest`` runs in one process. With ``-n N`` and no ``--dist``, a test file runs
whole on one worker, in its order, so its module fixtures are built once; and every Spark
file (one with a test whose id names Spark: ``[spark]``, ``test_spark_engine.py``) runs on
the same worker, the only one that starts a JVM. An explicit ``--dist`` is xdist's own.

Two workers help when the machine has cores to spare: on a busy one the suite waits for
CPU, not for its servers, and a second process only adds a second collection.
"""

from __future__ import annotations

import pytest

__all__ = ["chosen", "choose_scheduling", "is_worker", "make_scheduler"]

_CHOSEN = pytest.StashKey[bool]()


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def chosen(config: pytest.Config) -> bool:
    """Whether ``choose_scheduling`` chose this run's scheduling."""
    return config.stash.get(_CHOSEN, False)


def choose_scheduling(config: pytest.Config) -> None:
    """With ``-n N`` and no ``--dist``, schedule file by file with the Spark files together
    (a ``pytest_cmdline_main`` that runs before xdist's reads its options)."""
    if (is_worker(config) or not config.pluginmanager.hasplugin("xdist")
            or not config.getoption("numprocesses", None) or config.getoption("dist", "no") != "no"
            or config.getoption("usepdb", False)):
        return
    config.option.dist = "loadfile"
    config.stash[_CHOSEN] = True


def _file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def make_scheduler(config: pytest.Config, log):
    """xdist's file-by-file scheduling, with every Spark file in one unit of work."""
    from xdist.scheduler import LoadFileScheduling

    class SparkFilesTogether(LoadFileScheduling):
        spark_files: frozenset[str] = frozenset()

        def schedule(self) -> None:
            if self.collection is None and self.registered_collections:
                ids = next(iter(self.registered_collections.values()))
                self.spark_files = frozenset(_file(i) for i in ids if "spark" in i.lower())
            super().schedule()

        def _split_scope(self, nodeid: str) -> str:
            file = _file(nodeid)
            return "spark" if file in self.spark_files else file

    return SparkFilesTogether(config, log)
