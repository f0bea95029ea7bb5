"""OpenAPI pieces shared by every native endpoint: the error body and the error responses."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "code": serializers.CharField(help_text="Machine-readable error code."),
        "message": serializers.CharField(),
        "details": serializers.DictField(help_text="Per-field errors for validation_error; else extra data."),
    },
)


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """Error responses for ``extend_schema(responses=...)``; 429 is added everywhere (throttling)."""
    out = {s: OpenApiResponse(ErrorSerializer) for s in statuses}
    out[429] = OpenApiResponse(ErrorSerializer)
    return out


PRIVATE = (400, 401, 403)
