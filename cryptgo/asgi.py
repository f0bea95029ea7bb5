"""ASGI entry point: HTTP (Django, DRF, admin) and websockets (Channels) in one application."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptgo.settings")

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from streaming.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
