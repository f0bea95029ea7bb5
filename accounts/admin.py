from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import ApiKey, User


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


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Operators see keys and can revoke them; secrets are never shown (they are stored encrypted)."""

    list_display = ["id", "user", "label", "key_prefix", "can_read", "can_trade", "can_withdraw", "created_at",
                    "last_used_at", "revoked_at"]
    list_filter = ["can_trade", "can_withdraw", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__email", "label", "key"]
    readonly_fields = ["user", "label", "key", "can_read", "can_trade", "can_withdraw", "ip_allowlist", "created_at",
                       "last_used_at", "revoked_at"]
    fields = readonly_fields
    actions = ["revoke"]

    @admin.display(description="key")
    def key_prefix(self, obj: ApiKey) -> str:
        return obj.key[:12] + "…"

    def has_add_permission(self, request) -> bool:  # keys are created by their owner, with the secret shown once
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # revoke instead: the row stays for the audit trail
        return False

    @admin.action(description="Revoke the selected API keys")
    def revoke(self, request, queryset) -> None:
        from django.utils import timezone

        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} API key(s) revoked.")
