from django.urls import path

from markets.api import views

urlpatterns = [
    path("time", views.TimeApi.as_view(), name="time"),
    path("assets", views.AssetListApi.as_view(), name="assets"),
    path("markets", views.MarketListApi.as_view(), name="markets"),
    path("markets/<str:name>", views.MarketDetailApi.as_view(), name="market-detail"),
    path("markets/<str:name>/depth", views.DepthApi.as_view(), name="market-depth"),
    path("markets/<str:name>/deals", views.RecentDealsApi.as_view(), name="market-deals"),
    path("markets/<str:name>/ticker", views.TickerApi.as_view(), name="market-ticker"),
    path("markets/<str:name>/klines", views.KlinesApi.as_view(), name="market-klines"),
    path("tickers", views.TickerListApi.as_view(), name="tickers"),
]
