"""The model side: flavors (saving and running models of each library), a
content-addressed artifact store for their files, and signatures that pin the input
columns a model was trained on.

Importing this package imports no model library; each flavor imports its own when a
model of that flavor is saved or loaded.
"""

from featurestore.models.artifacts import ArtifactStore, LocalArtifactStore, artifact_store
from featurestore.models.flavors import Flavor, Predictor, flavor_names, get_flavor, infer_flavor, read_mlflow_model
from featurestore.models.signature import ColumnSpec, Signature

__all__ = [
    "ArtifactStore",
    "ColumnSpec",
    "Flavor",
    "LocalArtifactStore",
    "Predictor",
    "Signature",
    "artifact_store",
    "flavor_names",
    "get_flavor",
    "infer_flavor",
    "read_mlflow_model",
]
