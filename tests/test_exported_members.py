"""The public names users import; a change here is a change of the public API."""

import featurestore
import featurestore.types
import registry


def test_featurestore_exports():
    assert set(featurestore.__all__) == {
        "Aggregation", "Entity", "FeatureService", "FeatureStore", "FeatureStoreError", "FeatureView",
        "FeatureViewProjection", "Field", "FieldStatus", "FileLoggingDestination", "FileSource", "LoggingConfig",
        "OnDemandFeatureView", "OnlineResponse", "Project", "PushMode", "PushSource", "RequestSource", "RetrievalJob", "__version__", "on_demand_feature_view",
    }
    for name in featurestore.__all__:
        assert getattr(featurestore, name) is not None


def test_types_exports():
    assert set(featurestore.types.__all__) >= {
        "Array", "Bool", "Bytes", "Float32", "Float64", "Int32", "Int64", "String", "UnixTimestamp",
    }


def test_error_tree():
    from featurestore import errors

    for name in ("ConfigError", "DefinitionError", "NotFoundError", "SchemaError", "InputError",
                 "RegistryError", "ConflictError", "StoreUnavailableError", "IntegrityError", "JobError"):
        assert issubclass(getattr(errors, name), errors.FeatureStoreError), name
    assert issubclass(errors.ConflictError, errors.RegistryError)


def test_registry_exports():
    assert {"Registry", "ObjectSpec", "StoredObject", "Change", "Edge", "ApplyResult",
            "RegistryError", "ConflictError"} <= set(registry.__all__)


def test_model_registry_exports():
    import featurestore.models.arguments
    import featurestore.models.lineage
    import featurestore.models.loaded
    import featurestore.models.records
    import featurestore.models.registry
    import featurestore.models.uri
    from featurestore import errors

    assert set(featurestore.models.registry.__all__) == {"ARCHIVE_BLOCKERS", "LoadedModel", "ModelRegistry"}
    assert set(featurestore.models.records.__all__) >= {"AliasMove", "Model", "ModelVersion"}
    assert set(featurestore.models.uri.__all__) >= {"DEFAULT_ALIAS", "ModelURI", "parse_uri"}
    for module in (featurestore.models.arguments, featurestore.models.lineage, featurestore.models.loaded,
                   featurestore.models.records, featurestore.models.registry, featurestore.models.uri):
        for name in module.__all__:
            assert hasattr(module, name), (module.__name__, name)
    assert issubclass(errors.InUseError, errors.FeatureStoreError)
    assert set(registry.__all__) >= {"InUseError", "Transaction"}


def test_ui_exports():
    import importlib

    import serving.ui

    assert serving.ui.__all__ == ["create_ui"]
    for name in ("alerts", "app", "charts", "definitions", "jobs_page", "lineage_graph", "links", "models_pages",
                 "monitoring_pages", "overview", "render", "routes", "session"):
        module = importlib.import_module(f"serving.ui.{name}")
        for exported in module.__all__:
            assert hasattr(module, exported), (module.__name__, exported)
