from django.urls import path

from accounts.api import views

urlpatterns = [
    path("auth/register", views.RegisterApi.as_view(), name="auth-register"),
    path("auth/login", views.LoginApi.as_view(), name="auth-login"),
    path("auth/refresh", views.RefreshApi.as_view(), name="auth-refresh"),
    path("auth/logout", views.LogoutApi.as_view(), name="auth-logout"),
    path("account/me", views.MeApi.as_view(), name="account-me"),
    path("account/2fa/enrol", views.TotpEnrolApi.as_view(), name="totp-enrol"),
    path("account/2fa/confirm", views.TotpConfirmApi.as_view(), name="totp-confirm"),
    path("account/2fa/disable", views.TotpDisableApi.as_view(), name="totp-disable"),
    path("account/api-keys", views.ApiKeyListCreateApi.as_view(), name="api-keys"),
    path("account/api-keys/<int:key_id>", views.ApiKeyDetailApi.as_view(), name="api-key-detail"),
]
