from django.urls import path

from trading.api import views

urlpatterns = [
    path("balances", views.BalancesApi.as_view(), name="balances"),
    path("orders", views.OrdersApi.as_view(), name="orders"),
    path("orders/open", views.OpenOrdersApi.as_view(), name="orders-open"),
    path("orders/by-client-id/<path:client_order_id>", views.OrderByClientIdApi.as_view(), name="order-by-client-id"),
    path("orders/<int:order_id>", views.OrderDetailApi.as_view(), name="order-detail"),
    path("deals", views.MyDealsApi.as_view(), name="my-deals"),
    path("ledger", views.LedgerApi.as_view(), name="ledger"),
]
