"""The ``onnx`` flavor: an ONNX graph run by onnxruntime.

Saved from a ``.onnx`` file or an in-memory ``onnx.ModelProto`` (its serialized bytes;
the ``onnx`` package itself is not needed). How the table feeds the graph:

- one input (e.g. ``float_input`` of shape [N, k]): the table's columns, in order, are
  stacked into that matrix, converted to the input's element type;
- several inputs: each is fed from the column of the same name, shaped [N] or [N, 1]
  as the input declares.

The first output is the prediction: one value per row, or one row of values when the
output is [N, k] with k > 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from featurestore.errors import ModelError, SchemaError
from featurestore.models.flavors.base import Predictor, copy_model_file, is_instance_of, library_version, require
from featurestore.models.flavors.tabular import call_model, feature_matrix

__all__ = ["OnnxFlavor"]

# onnxruntime's names for tensor element types.
_DTYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
    "tensor(int32)": np.int32, "tensor(bool)": np.bool_, "tensor(string)": np.object_,
}


class OnnxFlavor:
    name = "onnx"
    extra = "onnx"

    def accepts(self, model: object) -> bool:
        return is_instance_of(model, "onnx", ("ModelProto",))

    def save(self, model: object, folder: Path, *, trusted: bool = False, source: dict | None = None) -> dict:
        (ort,) = require("onnx", "onnx", "onnxruntime")
        if isinstance(model, (str, Path)):
            name = copy_model_file(model, folder, "onnx", (".onnx",))
        elif self.accepts(model):
            name = "model.onnx"
            (folder / name).write_bytes(model.SerializeToString())
        else:
            raise ModelError(f"cannot save {type(model).__qualname__} with the onnx flavor: expected a .onnx file "
                             f"or an onnx.ModelProto")
        session = _session(ort, folder / name)  # refuse a graph onnxruntime cannot run, now
        meta = {"file": name, "onnxruntime_version": ort.__version__, "onnx_version": library_version("onnx"),
                "inputs": [i.name for i in session.get_inputs()], "outputs": [o.name for o in session.get_outputs()]}
        return meta | ({"source": source} if source else {})

    def load(self, folder: Path, meta: dict, *, trusted: bool = False) -> Predictor:
        (ort,) = require("onnx", "onnx", "onnxruntime")
        return _Predictor(_session(ort, Path(folder) / meta["file"]), meta["file"])


class _Predictor:
    def __init__(self, session, name: str):
        self.session = session
        self._inputs = session.get_inputs()
        self._output = session.get_outputs()[0].name
        self._label = f"onnx model {name}"

    def predict(self, features: pa.Table) -> list:
        if not features.num_rows:
            return []
        if len(self._inputs) == 1:
            spec = self._inputs[0]
            width = spec.shape[1] if len(spec.shape) == 2 else None
            if isinstance(width, int) and width != features.num_columns:
                raise SchemaError(f"{self._label}: input {spec.name!r} takes {width} columns, got "
                                  f"{features.num_columns} ({', '.join(features.column_names)})")
            feeds = {spec.name: feature_matrix(features, _DTYPES.get(spec.type))}
        else:
            feeds = {spec.name: self._column(features, spec) for spec in self._inputs}
        return call_model(lambda f: self.session.run([self._output], f)[0], feeds, features.num_rows, self._label)

    def _column(self, features: pa.Table, spec) -> np.ndarray:
        if spec.name not in features.column_names:
            raise SchemaError(f"{self._label}: no column for model input {spec.name!r}; columns: "
                              f"{', '.join(features.column_names)}")
        values = feature_matrix(features.select([spec.name]), _DTYPES.get(spec.type))
        return values if len(spec.shape) == 2 else values[:, 0]


def _session(ort, path: Path):
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(f"onnxruntime cannot load {path.name}: {type(exc).__name__}: {exc}") from None
