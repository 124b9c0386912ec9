"""Feast names this store does not have, each with what to do instead, so a ported repo
that imports one fails naming it as unsupported (never as unknown). ``featurestore`` and
``featurestore.types`` look names up here from their module ``__getattr__``."""

from __future__ import annotations

__all__ = ["UNSUPPORTED", "UNSUPPORTED_TYPES", "unsupported"]

_STREAMS = "streams come in through a PushSource (POST /push, store.push, `featurestore stream`)"
_SOURCES = "only local files are sources here: export the table to Parquet and use a FileSource"
_VECTORS = "vector search and embeddings are not part of this store"

UNSUPPORTED: dict[str, str] = {
    "BatchFeatureView": "use a FeatureView (with aggregations=[...] for windowed features)",
    "StreamFeatureView": f"use a FeatureView over a PushSource; {_STREAMS}",
    "KafkaSource": _STREAMS,
    "KinesisSource": _STREAMS,
    "BigQuerySource": _SOURCES,
    "SnowflakeSource": _SOURCES,
    "RedshiftSource": _SOURCES,
    "AthenaSource": _SOURCES,
    "OracleSource": _SOURCES,
    "ChrononSource": _SOURCES,
    "LabelView": "keep labels in a FeatureView over their FileSource or PushSource",
    "ConflictPolicy": "there is one write rule: the newer event time wins (docs/feast-migration.md)",
    "Feature": "Feast's old Feature class: use Field(name, dtype)",
    "ValueType": "leave Entity(value_type=...) out: a key's type comes from the view's schema or the data",
    "RepoConfig": "settings live in featurestore.yaml; FeatureStore(repo_path=...) reads it",
    "FeatureViewState": "feature views have no lifecycle state here",
    "FeastVectorStore": _VECTORS,
    "BaseChunker": _VECTORS, "TextChunker": _VECTORS, "ChunkingConfig": _VECTORS, "BaseEmbedder": _VECTORS,
    "DocEmbedder": _VECTORS, "MultiModalEmbedder": _VECTORS, "EmbeddingConfig": _VECTORS,
    "EmbeddingProvider": _VECTORS, "SentenceTransformersEmbeddingProvider": _VECTORS,
    "get_embedding_provider": _VECTORS,
}

UNSUPPORTED_TYPES: dict[str, str] = {
    "Decimal": "use Float64, or String for exact decimal text",
    "Uuid": "use String", "TimeUuid": "use String",
    "Set": "use Array(T)",
    "ImageBytes": "use Bytes", "PdfBytes": "use Bytes",
    "ZonedTimestamp": "use UnixTimestamp (times are UTC)",
    "ScalarMap": "use Map (string keys and values)", "Invalid": "pick a concrete type",
    "Dict": "use Map or Struct({...})", "List": "use Array(T)", "Union": "pick one type",
}


def unsupported(module: str, name: str, table: dict[str, str]) -> ImportError | AttributeError:
    """The error for ``from {module} import {name}``: unsupported, with what to do; or the
    usual one for a name Feast does not have either."""
    if name in table:
        return ImportError(f"{name} is a Feast object this store does not support: {table[name]} "
                           "(see docs/feast-migration.md)", name=name)
    return AttributeError(f"module {module!r} has no attribute {name!r}")
