from django.contrib import admin
from django.urls import include, path

from cryptgo.health import healthz

urlpatterns = [
    path("api/v1/wallets/", include("wallets.api.urls")),  # before any api/v1/ catch-all
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include("cryptgo.api.urls")),
]
