"""CryptGO project package: settings, URLs, ASGI and Celery applications."""
