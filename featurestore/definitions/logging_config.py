"""Feature logging settings of a feature service, in Feast's shape.

``FeatureService(..., logging_config=LoggingConfig(destination=FileLoggingDestination(
path="logs/driver"), sample_rate=0.1))`` asks the server to log a sample of the reads of
that service (the serving log). Data only: the log writer lives with the serving log.
"""

from __future__ import annotations

from dataclasses import dataclass

from featurestore.errors import DefinitionError

__all__ = ["FileLoggingDestination", "LoggingConfig"]


@dataclass(frozen=True)
class FileLoggingDestination:
    """Where logged rows go: a folder of Parquet files, absolute or relative to the repo
    root. An empty path means the store's default place under the offline store."""

    path: str = ""
    s3_endpoint_override: str = ""
    partition_by: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.path, str):
            raise DefinitionError(f"FileLoggingDestination path must be a string, not {self.path!r}")
        if self.path.startswith("file://"):
            object.__setattr__(self, "path", self.path[len("file://"):])
        if "://" in self.path or self.s3_endpoint_override:
            raise DefinitionError(
                f"FileLoggingDestination {self.path!r}: only local folders are supported; "
                "give a local path (or none, for the offline store's folder)"
            )
        if self.partition_by is not None:
            raise DefinitionError(
                "FileLoggingDestination partition_by is not supported: logs are partitioned by "
                "service name and date; remove partition_by"
            )


@dataclass(frozen=True)
class LoggingConfig:
    """``LoggingConfig(destination=FileLoggingDestination(path=...), sample_rate=1.0)``:
    log a ``sample_rate`` share (0 < rate <= 1) of the service's reads."""

    destination: FileLoggingDestination | None = None
    sample_rate: float = 1.0

    def __post_init__(self) -> None:
        destination = self.destination if self.destination is not None else FileLoggingDestination()
        if not isinstance(destination, FileLoggingDestination):
            raise DefinitionError(
                f"LoggingConfig destination {type(destination).__name__} is not supported; "
                "use FileLoggingDestination(path=...) (a local folder)"
            )
        object.__setattr__(self, "destination", destination)
        rate = self.sample_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1:
            raise DefinitionError(f"LoggingConfig sample_rate must be a number in (0, 1], not {rate!r}")
        object.__setattr__(self, "sample_rate", float(rate))
