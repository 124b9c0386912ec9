import textwrap

import pytest

from featurestore.errors import DefinitionError
from featurestore.repo import discover, python_files

DEFS = """
from datetime import timedelta
from featurestore import Entity, FeatureView, Field, FileSource
from featurestore.types import Float32

driver = Entity(name="driver", join_keys=["driver_id"])
stats = FeatureView(name="stats", entities=[driver], ttl=timedelta(hours=1),
                    schema=[Field("conv_rate", Float32)],
                    source=FileSource(path="data/stats.parquet", name="stats_source"))
"""


def make(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def test_discovers_objects_and_their_dependencies(tmp_path):
    repo = make(tmp_path, {"features/defs.py": DEFS})
    contents = discover(repo)
    assert set(contents.feature_views) == {"stats"}
    assert set(contents.entities) == {"driver"}
    assert set(contents.sources) == {"stats_source"}


def test_skips_hidden_folders_virtualenvs_and_ignored_paths(tmp_path):
    repo = make(tmp_path, {
        "features/defs.py": DEFS,
        ".hidden/broken.py": "raise RuntimeError('must not be imported')",
        "venv/lib/broken.py": "raise RuntimeError('must not be imported')",
        "myenv/pyvenv.cfg": "home = /usr\n",
        "myenv/lib/broken.py": "raise RuntimeError('must not be imported')",
        "scratch/broken.py": "raise RuntimeError('must not be imported')",
        ".featurestoreignore": "# comments are fine\nscratch/\n",
    })
    assert [p.relative_to(repo).as_posix() for p in python_files(repo)] == ["features/defs.py"]
    assert set(discover(repo).feature_views) == {"stats"}


def test_a_failing_module_is_named_with_its_line(tmp_path):
    repo = make(tmp_path, {"features/bad.py": "x = 1\n\nraise ValueError('boom')\n"})
    with pytest.raises(DefinitionError, match=r"features/bad.py, line 3: .*ValueError: boom"):
        discover(repo)


def test_an_invalid_definition_is_named_with_its_module(tmp_path):
    repo = make(tmp_path, {"defs.py": DEFS.replace("timedelta(hours=1)", "'1h'")})
    with pytest.raises(DefinitionError, match=r"defs.py, line \d+: feature view 'stats': ttl must be"):
        discover(repo)


def test_two_different_objects_with_one_name_are_rejected(tmp_path):
    other = DEFS.replace('join_keys=["driver_id"]', 'join_keys=["id"]')
    repo = make(tmp_path, {"a.py": DEFS, "b.py": other.replace("stats", "stats2")})
    with pytest.raises(DefinitionError, match="two different entitys are named 'driver'|two different entity"):
        discover(repo)
