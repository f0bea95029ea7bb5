"""Websocket routes: ``/ws/`` speaks the protocol of docs/websocket.md.

No origin check: the feed uses no cookies (authentication is in-band, with a
JWT or a signed API key), so a foreign page gains nothing a script could not
get by connecting itself.
"""

from django.urls import path

from streaming.consumers import StreamConsumer

websocket_urlpatterns = [
    path("ws/", StreamConsumer.as_asgi()),
]
