"""Fixtures for the model tests: generated training data and a real artifact store."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from featurestore.models import LocalArtifactStore, get_flavor

FEATURES = ["amount", "age", "score", "visits"]


@pytest.fixture
def training_data():
    """A small binary-classification set: X (200 x 4 float64), y, and X as a table."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, len(FEATURES)))
    y = ((X[:, 0] + 0.5 * X[:, 1] - X[:, 2] + rng.normal(scale=0.3, size=200)) > 0).astype(int)
    table = pa.table({name: X[:, i] for i, name in enumerate(FEATURES)})
    return X, y, table


@pytest.fixture
def local_store(tmp_path):
    return LocalArtifactStore(tmp_path / "artifacts")


@pytest.fixture
def round_trip(tmp_path, local_store):
    """save -> put -> fetch -> load, as the registry does; returns (predictor, meta, digest)."""
    counter = iter(range(1000))

    def run(flavor_name, model, *, trusted=False, **options):
        flavor = get_flavor(flavor_name)
        folder = tmp_path / f"save-{next(counter)}"
        folder.mkdir()
        meta = flavor.save(model, folder, trusted=trusted, **options)
        digest = local_store.put(folder)
        fetched = local_store.fetch(digest, label=f"model test version {flavor_name}")
        return flavor.load(fetched, meta, trusted=trusted), meta, digest

    return run
