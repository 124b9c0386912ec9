"""One router per resource: features, push, materialize, registry, and health/metrics."""

from __future__ import annotations

from serving.schemas import ErrorBody

__all__ = ["ERROR_RESPONSES"]

#: The error answers every route may give, for the OpenAPI docs (see serving.errors).
ERROR_RESPONSES: dict = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Malformed JSON"),
        (401, "An API key is required"),
        (403, "The API key is not valid"),
        (404, "Unknown feature view, feature, feature service or push source"),
        (413, "The request body is too large"),
        (422, "The request's content is wrong (names the field and what to send)"),
        (503, "The online store or the registry is unavailable"),
    )
}
