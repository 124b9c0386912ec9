"""A feature store on a server, over Arrow Flight: ``FeatureStore.remote(url, api_key=...)``
(docs/remote.md). The server side is ``serving/flight``."""

from featurestore.remote.client import RemoteFeatureStore
from featurestore.remote.results import RemoteRetrievalJob, RemoteSavedDataset

__all__ = ["RemoteFeatureStore", "RemoteRetrievalJob", "RemoteSavedDataset"]
