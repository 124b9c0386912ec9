"""Online stores: the newest feature values per entity, for low-latency reads."""

from __future__ import annotations

from featurestore.config import OnlineStoreConfig
from featurestore.online.base import EVENT_TIMESTAMP, OnlineRow, OnlineStore, OnlineView

__all__ = ["EVENT_TIMESTAMP", "OnlineRow", "OnlineStore", "OnlineView", "create_online_store"]


def create_online_store(config: OnlineStoreConfig, project: str) -> OnlineStore:
    """The backend named in featurestore.yaml (imported lazily: Redis is optional to run)."""
    if config.type == "redis":
        from featurestore.online.redis import RedisOnlineStore

        return RedisOnlineStore(config.connection_string, project)
    from featurestore.online.sqlite import SqliteOnlineStore

    return SqliteOnlineStore(config.path, project)
