from django.apps import AppConfig


class MatcherConfig(AppConfig):
    name = "matcher"
    default_auto_field = "django.db.models.BigAutoField"
