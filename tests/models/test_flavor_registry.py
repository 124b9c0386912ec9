"""Choosing a flavor: by name, by the model's type, and what happens without its library."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import featurestore.models
from featurestore.errors import InputError, NotFoundError
from featurestore.models import flavor_names, get_flavor, infer_flavor


def test_public_names():
    assert set(featurestore.models.__all__) == {
        "ArtifactStore", "ColumnSpec", "Flavor", "LocalArtifactStore", "Predictor", "Signature", "artifact_store",
        "flavor_names", "get_flavor", "infer_flavor", "read_mlflow_model",
    }
    assert flavor_names() == ("lightgbm", "onnx", "python", "sklearn", "xgboost")
    assert {get_flavor(n).extra for n in flavor_names()} == {None, "sklearn", "onnx", "xgboost", "lightgbm"}


def test_an_unknown_flavor_lists_the_known_ones():
    with pytest.raises(NotFoundError, match=r"unknown flavor 'sklern'; did you mean 'sklearn'\? known flavors: lightgbm"):
        get_flavor("sklern")
    with pytest.raises(NotFoundError, match="known flavors: lightgbm, onnx, python, sklearn, xgboost"):
        get_flavor("pytorch")


def test_infer_from_a_file_name_or_refuse():
    assert infer_flavor("m/model.onnx").name == "onnx"
    assert infer_flavor("model.skops").name == "sklearn"
    with pytest.raises(InputError, match="cannot tell the flavor of model file 'model.json'.*pass flavor="):
        infer_flavor("model.json")
    with pytest.raises(InputError, match="no flavor saves a builtins.int"):
        infer_flavor(3)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_importing_featurestore_imports_no_model_library():
    result = _run("""
        import sys
        import featurestore, featurestore.models, featurestore.models.flavors
        libs = {"sklearn", "skops", "onnx", "onnxruntime", "xgboost", "lightgbm"}
        print(sorted(m for m in sys.modules if m.split(".")[0] in libs))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("flavor", "blocked", "needs"),
    [
        ("sklearn", "skops", "scikit-learn and skops: pip install 'featurestore[sklearn]'"),
        ("onnx", "onnxruntime", "onnxruntime: pip install 'featurestore[onnx]'"),
        ("xgboost", "xgboost", "xgboost: pip install 'featurestore[xgboost]'"),
        ("lightgbm", "lightgbm", "lightgbm: pip install 'featurestore[lightgbm]'"),
    ],
)
def test_a_missing_library_names_the_extra_to_install(flavor, blocked, needs, tmp_path):
    # A None entry in sys.modules makes `import name` fail as if it were not installed.
    result = _run(f"""
        import sys
        sys.modules[{blocked!r}] = None
        from pathlib import Path
        from featurestore.errors import ModelError
        from featurestore.models import get_flavor
        for call in (lambda: get_flavor({flavor!r}).save("x", Path({str(tmp_path)!r})),
                     lambda: get_flavor({flavor!r}).load(Path({str(tmp_path)!r}), {{"file": "x"}})):
            try:
                call()
            except ModelError as exc:
                print(exc)
    """)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(f"the {flavor} flavor needs {needs}" in line for line in lines), lines
