"""Admin building blocks shared by the apps."""

from django.contrib import admin


class MatcherOwnedAdmin(admin.ModelAdmin):
    """Read-only admin for tables only the matcher writes; changes go through the matcher client."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
