"""``call_model``: one model call for ``/predict`` and ``/v2/.../infer``, its errors and metrics.

The call runs on the runner's threads within the version's timeout, or inline on the
event loop once the version has proved fast (``serving.inline_calls``: ``InlineGate``).

- past the version's timeout (``serving.model_timeout``, per model in
  ``serving.model_timeouts``): 504 ``ModelTimeout``, counted as ``timeout`` (an inline
  call cannot be cut off: it answers 504 when it returns past the timeout);
- the model raised (a flavor's ModelError, or any exception), or answered a number of
  values other than one per row: 500
  ``PredictionError`` naming the exception's type (logged with its traceback), counted
  as ``model_error``;
- a FeatureStoreError from conforming the input to the signature is the caller's
  (422), counted as ``invalid_input``.
"""

from __future__ import annotations

import logging
import time

import pyarrow as pa

from featurestore.errors import FeatureStoreError, ModelError
from featurestore.models.inputs import ModelInputs
from serving.disclosure import scrub
from serving.errors import HTTPError
from serving.model_cache import VARIANT, ServedModel
from serving.inline_calls import Timed
from serving.model_runner import ModelRunner

__all__ = ["call_model"]

log = logging.getLogger("featurestore.serving")


async def call_model(runner: ModelRunner, served: ServedModel, inputs: ModelInputs | pa.Table,
                     variant: str = VARIANT) -> list:
    """The model's answer for ``inputs``, one value per row. ``ModelInputs`` are the
    version's (``read_inputs`` of ``served.spec`` built them), in signature order and types
    already, so the model is called directly, with their numpy matrix when its flavor
    takes one (``MatrixPredictor``) and they are all numbers; a table is checked against
    the signature first (``LoadedModel.predict``). Outcomes are counted under ``variant``
    (the rollout's variant that served)."""
    loaded = served.loaded
    function, argument = _entry(served, inputs)
    began = time.perf_counter()
    try:
        if served.gate.inline:
            predictions = _inline(served, function, argument)
        else:
            predictions = await _threaded(runner, served, function, argument)
    except TimeoutError:
        served.count("timeout", variant)
        uri = loaded.version.uri
        raise HTTPError(504, "ModelTimeout",
                        f"model {uri} did not answer within {served.timeout:g} s (serving.model_timeout, or "
                        f"serving.model_timeouts.{loaded.version.name}); it may still be running") from None
    except ModelError as exc:  # a flavor wraps what the model raised (or a wrong output shape)
        raise _failed(served, variant, exc.__cause__ or exc) from None
    except FeatureStoreError:  # the input does not fit the signature: the caller's
        served.count("invalid_input", variant)
        raise
    except Exception as exc:
        raise _failed(served, variant, exc) from None
    finally:
        served.observe["model"](time.perf_counter() - began)
    if not isinstance(predictions, list) or len(predictions) != inputs.num_rows:
        got = f"{len(predictions)} values" if isinstance(predictions, list) else f"a {type(predictions).__name__}"
        raise _failed(served, variant, TypeError(f"it returned {got} for {inputs.num_rows} rows; a model returns a "
                                                 "list of one value per row"))
    return predictions


def _entry(served: ServedModel, inputs: ModelInputs | pa.Table) -> tuple:
    """The function to call and its argument: the predictor's ``predict_matrix`` with the
    inputs' matrix, its ``predict`` with their table, or ``LoadedModel.predict`` with a table
    that is not conformed yet. (A value the table refuses raises its InputError here.)"""
    if not isinstance(inputs, ModelInputs):
        return served.loaded.predict, inputs
    predictor = served.loaded.predictor
    if served.takes_matrix:
        matrix = inputs.matrix()
        if matrix is not None:
            return predictor.predict_matrix, matrix
    return predictor.predict, inputs.table


async def _threaded(runner: ModelRunner, served: ServedModel, function, argument):
    timed = Timed(function, served.gate.budget)
    try:
        return await runner.run(timed, argument, served.timeout)
    finally:  # a call that timed out or was cancelled counts as slow (cpu None: not done)
        if served.gate.threaded(timed.cpu, timed.wall, timed.preempted):
            served.inline_mode(1)


def _inline(served: ServedModel, function, argument):
    """The call on the event loop; TimeoutError (after it returned) when it overran the timeout."""
    timed = Timed(function, served.gate.budget)
    try:
        return timed(argument)
    finally:
        gate, cpu, wall = served.gate, timed.cpu, timed.wall
        if gate.inlined(cpu, wall, timed.preempted):
            log.warning("model %s took %.1f ms (%.1f ms of CPU) inline, over its budget of %.1f ms: its calls go "
                        "back to the runner threads, for at least %d calls", served.version.uri, wall * 1000,
                        cpu * 1000, gate.budget * 1000, gate.needed)
            served.inline_mode(0)
        if wall > served.timeout:
            raise TimeoutError


def _failed(served: ServedModel, variant: str, exc: Exception) -> HTTPError:
    served.count("model_error", variant)
    uri = served.version.uri
    log.warning("model %s failed: %s: %s", uri, type(exc).__name__, exc, exc_info=exc)
    return HTTPError(500, "PredictionError", f"model {uri} raised {type(exc).__name__}: {scrub(str(exc))}")
