from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PlaceLimitRequest(_message.Message):
    __slots__ = ("user", "market", "side", "price", "amount", "tif", "post_only", "client_order_id", "stp")
    USER_FIELD_NUMBER: _ClassVar[int]
    MARKET_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    TIF_FIELD_NUMBER: _ClassVar[int]
    POST_ONLY_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    STP_FIELD_NUMBER: _ClassVar[int]
    user: int
    market: str
    side: str
    price: str
    amount: str
    tif: str
    post_only: bool
    client_order_id: str
    stp: str
    def __init__(self, user: _Optional[int] = ..., market: _Optional[str] = ..., side: _Optional[str] = ..., price: _Optional[str] = ..., amount: _Optional[str] = ..., tif: _Optional[str] = ..., post_only: _Optional[bool] = ..., client_order_id: _Optional[str] = ..., stp: _Optional[str] = ...) -> None: ...

class PlaceMarketRequest(_message.Message):
    __slots__ = ("user", "market", "side", "amount", "client_order_id", "stp")
    USER_FIELD_NUMBER: _ClassVar[int]
    MARKET_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    STP_FIELD_NUMBER: _ClassVar[int]
    user: int
    market: str
    side: str
    amount: str
    client_order_id: str
    stp: str
    def __init__(self, user: _Optional[int] = ..., market: _Optional[str] = ..., side: _Optional[str] = ..., amount: _Optional[str] = ..., client_order_id: _Optional[str] = ..., stp: _Optional[str] = ...) -> None: ...

class PlaceOne(_message.Message):
    __slots__ = ("limit", "market", "cancel")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    MARKET_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    limit: PlaceLimitRequest
    market: PlaceMarketRequest
    cancel: CancelRequest
    def __init__(self, limit: _Optional[_Union[PlaceLimitRequest, _Mapping]] = ..., market: _Optional[_Union[PlaceMarketRequest, _Mapping]] = ..., cancel: _Optional[_Union[CancelRequest, _Mapping]] = ...) -> None: ...

class PlaceBatchRequest(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[PlaceOne]
    def __init__(self, orders: _Optional[_Iterable[_Union[PlaceOne, _Mapping]]] = ...) -> None: ...

class PlaceResult(_message.Message):
    __slots__ = ("order", "reason", "code")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    order: Order
    reason: str
    code: int
    def __init__(self, order: _Optional[_Union[Order, _Mapping]] = ..., reason: _Optional[str] = ..., code: _Optional[int] = ...) -> None: ...

class PlaceBatchReply(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[PlaceResult]
    def __init__(self, results: _Optional[_Iterable[_Union[PlaceResult, _Mapping]]] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("user", "market", "order_id", "client_order_id")
    USER_FIELD_NUMBER: _ClassVar[int]
    MARKET_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    user: int
    market: str
    order_id: int
    client_order_id: str
    def __init__(self, user: _Optional[int] = ..., market: _Optional[str] = ..., order_id: _Optional[int] = ..., client_order_id: _Optional[str] = ...) -> None: ...

class CancelAllRequest(_message.Message):
    __slots__ = ("user", "market")
    USER_FIELD_NUMBER: _ClassVar[int]
    MARKET_FIELD_NUMBER: _ClassVar[int]
    user: int
    market: str
    def __init__(self, user: _Optional[int] = ..., market: _Optional[str] = ...) -> None: ...

class UpdateBalanceRequest(_message.Message):
    __slots__ = ("user", "asset", "business", "business_id", "change", "detail_json")
    USER_FIELD_NUMBER: _ClassVar[int]
    ASSET_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_JSON_FIELD_NUMBER: _ClassVar[int]
    user: int
    asset: str
    business: str
    business_id: str
    change: str
    detail_json: str
    def __init__(self, user: _Optional[int] = ..., asset: _Optional[str] = ..., business: _Optional[str] = ..., business_id: _Optional[str] = ..., change: _Optional[str] = ..., detail_json: _Optional[str] = ...) -> None: ...

class BalanceReply(_message.Message):
    __slots__ = ("asset", "available", "frozen")
    ASSET_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FIELD_NUMBER: _ClassVar[int]
    asset: str
    available: str
    frozen: str
    def __init__(self, asset: _Optional[str] = ..., available: _Optional[str] = ..., frozen: _Optional[str] = ...) -> None: ...

class GetBalancesRequest(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: int
    def __init__(self, user: _Optional[int] = ...) -> None: ...

class BalancesReply(_message.Message):
    __slots__ = ("balances",)
    BALANCES_FIELD_NUMBER: _ClassVar[int]
    balances: _containers.RepeatedCompositeFieldContainer[BalanceReply]
    def __init__(self, balances: _Optional[_Iterable[_Union[BalanceReply, _Mapping]]] = ...) -> None: ...

class GetOrderRequest(_message.Message):
    __slots__ = ("order_id",)
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: int
    def __init__(self, order_id: _Optional[int] = ...) -> None: ...

class OpenOrdersRequest(_message.Message):
    __slots__ = ("user", "market")
    USER_FIELD_NUMBER: _ClassVar[int]
    MARKET_FIELD_NUMBER: _ClassVar[int]
    user: int
    market: str
    def __init__(self, user: _Optional[int] = ..., market: _Optional[str] = ...) -> None: ...

class Order(_message.Message):
    __slots__ = ("id", "user", "market", "side", "type", "tif", "post_only", "stp", "price", "amount", "quote_amount", "filled_amount", "filled_quote", "fee", "fee_asset", "status", "client_order_id", "created_at", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    MARKET_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TIF_FIELD_NUMBER: _ClassVar[int]
    POST_ONLY_FIELD_NUMBER: _ClassVar[int]
    STP_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    QUOTE_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    FILLED_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    FILLED_QUOTE_FIELD_NUMBER: _ClassVar[int]
    FEE_FIELD_NUMBER: _ClassVar[int]
    FEE_ASSET_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    user: int
    market: str
    side: str
    type: str
    tif: str
    post_only: bool
    stp: str
    price: str
    amount: str
    quote_amount: str
    filled_amount: str
    filled_quote: str
    fee: str
    fee_asset: str
    status: str
    client_order_id: str
    created_at: int
    updated_at: int
    def __init__(self, id: _Optional[int] = ..., user: _Optional[int] = ..., market: _Optional[str] = ..., side: _Optional[str] = ..., type: _Optional[str] = ..., tif: _Optional[str] = ..., post_only: _Optional[bool] = ..., stp: _Optional[str] = ..., price: _Optional[str] = ..., amount: _Optional[str] = ..., quote_amount: _Optional[str] = ..., filled_amount: _Optional[str] = ..., filled_quote: _Optional[str] = ..., fee: _Optional[str] = ..., fee_asset: _Optional[str] = ..., status: _Optional[str] = ..., client_order_id: _Optional[str] = ..., created_at: _Optional[int] = ..., updated_at: _Optional[int] = ...) -> None: ...

class OrderList(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[Order]
    def __init__(self, orders: _Optional[_Iterable[_Union[Order, _Mapping]]] = ...) -> None: ...

class DepthRequest(_message.Message):
    __slots__ = ("market", "limit", "interval")
    MARKET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    market: str
    limit: int
    interval: str
    def __init__(self, market: _Optional[str] = ..., limit: _Optional[int] = ..., interval: _Optional[str] = ...) -> None: ...

class Level(_message.Message):
    __slots__ = ("price", "amount")
    PRICE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    price: str
    amount: str
    def __init__(self, price: _Optional[str] = ..., amount: _Optional[str] = ...) -> None: ...

class DepthReply(_message.Message):
    __slots__ = ("asks", "bids", "seq")
    ASKS_FIELD_NUMBER: _ClassVar[int]
    BIDS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    asks: _containers.RepeatedCompositeFieldContainer[Level]
    bids: _containers.RepeatedCompositeFieldContainer[Level]
    seq: int
    def __init__(self, asks: _Optional[_Iterable[_Union[Level, _Mapping]]] = ..., bids: _Optional[_Iterable[_Union[Level, _Mapping]]] = ..., seq: _Optional[int] = ...) -> None: ...

class MarketRequest(_message.Message):
    __slots__ = ("market",)
    MARKET_FIELD_NUMBER: _ClassVar[int]
    market: str
    def __init__(self, market: _Optional[str] = ...) -> None: ...

class SetFeesRequest(_message.Message):
    __slots__ = ("market", "maker_fee", "taker_fee", "user")
    MARKET_FIELD_NUMBER: _ClassVar[int]
    MAKER_FEE_FIELD_NUMBER: _ClassVar[int]
    TAKER_FEE_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    market: str
    maker_fee: str
    taker_fee: str
    user: int
    def __init__(self, market: _Optional[str] = ..., maker_fee: _Optional[str] = ..., taker_fee: _Optional[str] = ..., user: _Optional[int] = ...) -> None: ...

class LoadAssetRequest(_message.Message):
    __slots__ = ("symbol",)
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    def __init__(self, symbol: _Optional[str] = ...) -> None: ...

class AssetReply(_message.Message):
    __slots__ = ("name", "prec")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PREC_FIELD_NUMBER: _ClassVar[int]
    name: str
    prec: int
    def __init__(self, name: _Optional[str] = ..., prec: _Optional[int] = ...) -> None: ...

class MarketReply(_message.Message):
    __slots__ = ("json",)
    JSON_FIELD_NUMBER: _ClassVar[int]
    json: str
    def __init__(self, json: _Optional[str] = ...) -> None: ...

class MarketList(_message.Message):
    __slots__ = ("markets",)
    MARKETS_FIELD_NUMBER: _ClassVar[int]
    markets: _containers.RepeatedCompositeFieldContainer[MarketReply]
    def __init__(self, markets: _Optional[_Iterable[_Union[MarketReply, _Mapping]]] = ...) -> None: ...

class SnapshotReply(_message.Message):
    __slots__ = ("id", "op_seq")
    ID_FIELD_NUMBER: _ClassVar[int]
    OP_SEQ_FIELD_NUMBER: _ClassVar[int]
    id: int
    op_seq: int
    def __init__(self, id: _Optional[int] = ..., op_seq: _Optional[int] = ...) -> None: ...

class StateReply(_message.Message):
    __slots__ = ("json",)
    JSON_FIELD_NUMBER: _ClassVar[int]
    json: str
    def __init__(self, json: _Optional[str] = ...) -> None: ...
