"""The example model: a logistic regression fitted with numpy (no scikit-learn needed).

It is registered with the ``python`` flavor, which saves this class's import path
(``driver_model:DriverModel``) and the parameters ``get_params()`` returns; loading the
version re-creates it as ``DriverModel(**params)``. Keep module level free of work:
`featurestore apply` imports every module of the repo.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


class DriverModel:
    """P(trip completed) from a driver's features; missing values count as the training mean."""

    def __init__(self, features: list[str], weights: list[float], bias: float, means: list[float],
                 scales: list[float]):
        self.features, self.weights, self.bias = list(features), list(weights), float(bias)
        self.means, self.scales = list(means), list(scales)

    @classmethod
    def fit(cls, table: pa.Table, features: list[str], label: str, steps: int = 500,
            learning_rate: float = 0.5) -> DriverModel:
        raw = _matrix(table, features)
        means = np.nanmean(raw, axis=0)
        scales = np.nanstd(raw, axis=0)
        scales[scales == 0] = 1.0
        x = _standardize(raw, means, scales)
        y = table.column(label).cast(pa.float64()).to_numpy()
        w, b = np.zeros(x.shape[1]), 0.0
        for _ in range(steps):  # plain gradient descent on the log loss
            error = _sigmoid(x @ w + b) - y
            w -= learning_rate * x.T @ error / len(y)
            b -= learning_rate * float(error.mean())
        return cls(features, w.tolist(), b, means.tolist(), scales.tolist())

    def get_params(self) -> dict:
        return {"features": self.features, "weights": self.weights, "bias": self.bias,
                "means": self.means, "scales": self.scales}

    def predict(self, features: pa.Table) -> list[float]:
        x = _standardize(_matrix(features, self.features), np.array(self.means), np.array(self.scales))
        return [round(float(p), 6) for p in _sigmoid(x @ np.array(self.weights) + self.bias)]


def _matrix(table: pa.Table, names: list[str]) -> np.ndarray:
    return np.column_stack([table.column(n).cast(pa.float64()).to_numpy(zero_copy_only=False) for n in names])


def _standardize(x: np.ndarray, means: np.ndarray, scales: np.ndarray) -> np.ndarray:
    x = np.where(np.isnan(x), means, x)
    return (x - means) / scales


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))
