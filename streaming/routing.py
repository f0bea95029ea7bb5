"""Websocket routes; the consumers arrive with the websocket feed."""

websocket_urlpatterns: list = []
