"""Routes of the client API: the native API under /api/v1/, Binance's subset under /api/v3/, the schema."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes

from cryptgo.api.errors import NotFound


@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@authentication_classes([])
@permission_classes([])
@throttle_classes([])
def not_found(request, *args, **kwargs):
    """Unknown /api/v1/ paths answer in the API's error format, not Django's HTML page."""
    raise NotFound("not_found", "No such endpoint.")


not_found.cls.schema = None  # type: ignore[attr-defined]

v1 = [
    path("", include("accounts.api.urls")),
    path("", include("markets.api.urls")),
    path("", include("trading.api.urls")),
    re_path(r"^[\s\S]*$", not_found),  # any path, newlines included
]

urlpatterns = [
    path("api/v1/", include(v1)),
    path("api/v3/", include("binance.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]
