"""The HTTP service: online features, push, materialization, registry browsing, metrics.

``create_app(store_or_repo_path)`` builds the FastAPI app; ``featurestore serve`` runs it.
"""

from serving.app import app_from_env, create_app

__all__ = ["app_from_env", "create_app"]
