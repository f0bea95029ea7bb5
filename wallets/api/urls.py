"""Wallet routes, mounted at /api/v1/wallets/."""

from django.urls import path

from wallets.api import views

urlpatterns = [
    path("deposit-address", views.DepositAddressApi.as_view(), name="wallets-deposit-address"),
    path("deposits", views.DepositsApi.as_view(), name="wallets-deposits"),
    path("withdrawals", views.WithdrawalsApi.as_view(), name="wallets-withdrawals"),
    path("withdrawals/<int:withdrawal_id>", views.WithdrawalApi.as_view(), name="wallets-withdrawal"),
    path("withdrawals/<int:withdrawal_id>/cancel", views.WithdrawalCancelApi.as_view(),
         name="wallets-withdrawal-cancel"),
]
