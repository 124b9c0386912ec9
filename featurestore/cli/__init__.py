"""The ``featurestore`` command line."""
