"""The serving package's public names."""

import serving
import serving.app


def test_public_names():
    assert serving.__all__ == ["app_from_env", "create_app"]
    assert serving.create_app is serving.app.create_app
