"""The Open Inference Protocol (KServe v2) as a Triton/KServe client speaks it, against a
real server: health, metadata from the signature, readiness, inference on the caller's
own tensors, and the protocol's error shape."""

from __future__ import annotations

import numpy as np
import pytest

httpclient = pytest.importorskip("tritonclient.http", reason="the dev extra installs tritonclient[http]")
from tritonclient.utils import InferenceServerException  # noqa: E402

ROWS = {"conv_rate": [0.9, 0.1], "acc_rate": [0.8, 0.2], "avg_daily_trips": [20, 1]}


@pytest.fixture
def triton(prediction_server):
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{prediction_server.server.port}")
    yield client
    client.close()


def test_server_health_and_metadata(triton):
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.get_server_metadata()["name"] == "featurestore"
    metadata = triton.get_model_metadata("driver_model")
    assert metadata["name"] == "driver_model" and metadata["versions"] == ["1"] and metadata["platform"] == "python"
    assert metadata["inputs"] == [{"name": "conv_rate", "datatype": "FP32", "shape": [-1]},
                                  {"name": "acc_rate", "datatype": "FP32", "shape": [-1]},
                                  {"name": "avg_daily_trips", "datatype": "INT64", "shape": [-1]}]
    assert metadata["outputs"] == [{"name": "trip_completed", "datatype": "INT64", "shape": [-1]}]
    assert triton.get_model_metadata("driver_model", model_version="1")["name"] == "driver_model"
    assert triton.is_model_ready("driver_model") and triton.is_model_ready("driver_model", "1")


def test_infer_round_trip_gives_the_models_own_answer(triton, prediction_server):
    inputs = []
    for name, dtype, values in (("conv_rate", "FP32", np.float32), ("acc_rate", "FP32", np.float32),
                                ("avg_daily_trips", "INT64", np.int64)):
        tensor = httpclient.InferInput(name, [2], dtype)
        tensor.set_data_from_numpy(np.array(ROWS[name], dtype=values), binary_data=False)
        inputs.append(tensor)
    wanted = [httpclient.InferRequestedOutput("trip_completed", binary_data=False)]
    result = triton.infer("driver_model", inputs, outputs=wanted, request_id="r-1")
    answer = result.get_response()
    assert answer["model_name"] == "driver_model" and answer["model_version"] == "1" and answer["id"] == "r-1"
    with prediction_server.store() as store:
        expected = store.models.load("driver_model/1").predict(
            {"conv_rate": np.array(ROWS["conv_rate"], dtype=np.float32),
             "acc_rate": np.array(ROWS["acc_rate"], dtype=np.float32), "avg_daily_trips": ROWS["avg_daily_trips"]})
    assert result.as_numpy("trip_completed").tolist() == expected
    pinned = triton.infer("driver_model", inputs, model_version="1")
    assert pinned.as_numpy("trip_completed").tolist() == expected


def test_errors_in_the_protocols_shape(triton, prediction_server):
    with pytest.raises(InferenceServerException, match="unknown model 'driver_modl'; did you mean 'driver_model'"):
        triton.get_model_metadata("driver_modl")
    tensor = httpclient.InferInput("conv_rate", [1], "FP32")
    tensor.set_data_from_numpy(np.array([0.5], dtype=np.float32), binary_data=False)
    with pytest.raises(InferenceServerException, match="needs input tensor 'acc_rate'"):
        triton.infer("driver_model", [tensor])
    client = prediction_server.client
    answer = client.post("/v2/models/driver_model/infer", json={"inputs": [
        {"name": "conv_rate", "shape": [2], "datatype": "FP32", "data": [0.5]}]})
    assert answer.status_code == 422
    assert answer.json() == {"error": "input tensor 'conv_rate': shape [2] holds 2 values, 'data' has 1"}
    assert client.get("/v2/models/driver_model/versions/9").status_code == 404
    binary = httpclient.InferInput("conv_rate", [1], "FP32")
    binary.set_data_from_numpy(np.array([0.5], dtype=np.float32))  # the binary extension
    with pytest.raises(InferenceServerException, match="binary tensor extension is not supported"):
        triton.infer("scaled", [binary])
