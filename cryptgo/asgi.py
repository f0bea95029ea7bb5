"""ASGI entry point: HTTP (Django, DRF, admin) and websockets (Channels) in one application.

HTTP goes through ``cryptgo.fastpath`` first: it answers the hot public market-data reads itself and
hands every other request to Django (docs/adr/0007-asgi-fast-path.md).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptgo.settings")

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from cryptgo.fastpath import FastPath  # noqa: E402
from streaming.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": FastPath(django_asgi_app),
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
