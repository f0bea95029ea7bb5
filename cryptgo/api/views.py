"""Base classes and helpers shared by the native API views (accounts, markets, trading)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cryptgo.api.errors import ApiError, NotFound
from cryptgo.api.permissions import CanRead, CanTrade

MAX_DB_INT = 2**63 - 1


def query(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    ser = serializer_class(data=request.query_params)
    ser.is_valid(raise_exception=True)
    return dict(ser.validated_data)


def body(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    ser = serializer_class(data=request.data)
    ser.is_valid(raise_exception=True)
    return dict(ser.validated_data)


def db_id(value: int) -> int:
    """A path id that fits the database's bigint, else 404 (not a 500 from an out-of-range query)."""
    if not 0 < value <= MAX_DB_INT:
        raise NotFound()
    return value


class PrivateApi(APIView):
    """A user's own data: reads need the 'read' permission of an API key, writes 'trade' (a JWT has both)."""

    def get_permissions(self) -> list[Any]:
        if self.request is not None and self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [CanRead()]
        return [CanTrade()]


class PublicApi(APIView):
    """Public market data: no authentication (a stale token must not break a public read), IP throttle only."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []


class IdCursorPagination(CursorPagination):
    """Newest first by id; opaque cursors stay stable while new rows arrive."""

    ordering = "-id"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 500

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any] | None:
        from rest_framework.exceptions import NotFound as DrfNotFound

        try:
            return super().paginate_queryset(queryset, request, view)
        except DrfNotFound:
            raise ApiError("invalid_cursor", "The cursor is invalid.") from None

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"next": self.get_next_link(), "previous": self.get_previous_link(), "results": data})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["results", "next", "previous"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }


CURSOR_PARAMS = [
    OpenApiParameter("cursor", OpenApiTypes.STR, description="Opaque cursor from a previous page's next/previous."),
    OpenApiParameter("limit", OpenApiTypes.INT, description="Page size, 1-500 (default 100)."),
]


def page_schema(item: type[serializers.Serializer], name: str) -> serializers.Serializer:
    """The OpenAPI shape of one cursor page of ``item``."""
    from drf_spectacular.utils import inline_serializer

    return inline_serializer(name=name, fields={
        "next": serializers.URLField(allow_null=True, help_text="The next (older) page, or null."),
        "previous": serializers.URLField(allow_null=True, help_text="The previous (newer) page, or null."),
        "results": item(many=True),
    })


def paginate(view: APIView, request: Request, queryset: Any, render: Any) -> Response:
    paginator = IdCursorPagination()
    page = paginator.paginate_queryset(queryset, request, view)
    assert page is not None
    return paginator.get_paginated_response([render(row) for row in page])
