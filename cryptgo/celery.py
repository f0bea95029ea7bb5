"""The Celery application for the wallet tasks (worker and beat)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptgo.settings")

app = Celery("cryptgo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
