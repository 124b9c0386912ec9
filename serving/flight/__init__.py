"""The Arrow Flight server (docs/remote.md): training sets, saved datasets, batch scoring
and online reads for ``FeatureStore.remote`` and for Feast's remote offline store."""

from serving.flight.server import FeatureFlightServer
from serving.flight.settings import FlightSettings, flight_settings

__all__ = ["FeatureFlightServer", "FlightSettings", "flight_settings"]
