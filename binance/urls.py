from django.urls import path

from binance import views

urlpatterns = [
    path("ping", views.PingApi.as_view()),
    path("time", views.TimeApi.as_view()),
    path("exchangeInfo", views.ExchangeInfoApi.as_view()),
    path("depth", views.DepthApi.as_view()),
    path("trades", views.TradesApi.as_view()),
    path("klines", views.KlinesApi.as_view()),
    path("ticker/24hr", views.Ticker24hrApi.as_view()),
    path("ticker/price", views.TickerPriceApi.as_view()),
    path("account", views.AccountApi.as_view()),
    path("order", views.OrderApi.as_view()),
    path("openOrders", views.OpenOrdersApi.as_view()),
    path("allOrders", views.AllOrdersApi.as_view()),
    path("myTrades", views.MyTradesApi.as_view()),
]
