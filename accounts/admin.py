from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["id"]
    list_display = ["id", "email", "is_active", "is_staff", "totp_enabled", "date_joined", "last_login"]
    list_filter = ["is_active", "is_staff", "is_superuser", "totp_enabled"]
    search_fields = ["email", "first_name", "last_name"]
    readonly_fields = ["totp_enabled", "date_joined", "last_login"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Security", {"fields": ("totp_enabled",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
