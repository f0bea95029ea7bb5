"""Wallet API: the deposit address, deposit history, and withdrawals (request, list, cancel).

Writes go through ``wallets.services``; every refusal is an ``ApiError`` rendered
once by the API's exception handler as ``{"code", "message", "details"}``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from cryptgo.api.errors import NotFound
from cryptgo.api.permissions import CanWithdraw
from cryptgo.api.schema import errors
from cryptgo.api.views import PrivateApi, body, db_id
from wallets import selectors, services
from wallets.api import serializers as s


class DepositAddressApi(PrivateApi):
    @extend_schema(tags=["wallets"], responses={200: s.DepositAddressOut, **errors(400, 401, 403)},
                   summary="Your deposit address (created on first request); one per chain, all assets")
    def get(self, request: Request) -> Response:
        address = services.deposit_address_for(request.user)
        return Response(s.DepositAddressOut({"chain": address.chain, "address": address.address}).data)


class DepositsApi(PrivateApi):
    @extend_schema(tags=["wallets"], responses={200: s.DepositOut(many=True), **errors(401, 403)},
                   summary="Your last 100 deposits, newest first, with their confirmations")
    def get(self, request: Request) -> Response:
        return Response(s.DepositOut(selectors.deposits_for(request.user), many=True).data)


class WithdrawalsApi(PrivateApi):
    def get_permissions(self) -> list[Any]:
        if self.request is not None and self.request.method == "POST":
            return [CanWithdraw()]
        return super().get_permissions()

    @extend_schema(tags=["wallets"], responses={200: s.WithdrawalOut(many=True), **errors(401, 403)},
                   summary="Your last 100 withdrawals, newest first")
    def get(self, request: Request) -> Response:
        return Response(s.WithdrawalOut(selectors.withdrawals_for(request.user), many=True).data)

    @extend_schema(tags=["wallets"], request=s.WithdrawalIn,
                   responses={201: s.WithdrawalOut, **errors(400, 401, 403, 503)},
                   summary="Request a withdrawal: amount + fee is debited at once; TOTP needed when enabled")
    def post(self, request: Request) -> Response:
        d = body(s.WithdrawalIn, request)
        w = services.withdrawal_request(user=request.user, asset=d["asset"], address=d["address"],
                                        amount=d["amount"], totp_code=d.get("totp_code") or None,
                                        client_request_id=d.get("client_request_id"))
        return Response(s.WithdrawalOut(w).data, status=status.HTTP_201_CREATED)


class WithdrawalApi(PrivateApi):
    @extend_schema(tags=["wallets"], responses={200: s.WithdrawalOut, **errors(401, 403, 404)},
                   summary="One of your withdrawals")
    def get(self, request: Request, withdrawal_id: int) -> Response:
        w = selectors.withdrawal_for(request.user, db_id(withdrawal_id))
        if w is None:
            raise NotFound("withdrawal_not_found", "No such withdrawal.")
        return Response(s.WithdrawalOut(w).data)


class WithdrawalCancelApi(PrivateApi):
    def get_permissions(self) -> list[Any]:
        return [CanWithdraw()]

    @extend_schema(tags=["wallets"], request=None, responses={200: s.WithdrawalOut, **errors(401, 403, 404, 409)},
                   summary="Cancel a withdrawal not yet signed; the debit is refunded")
    def post(self, request: Request, withdrawal_id: int) -> Response:
        w = services.withdrawal_cancel(user=request.user, withdrawal_id=db_id(withdrawal_id))
        return Response(s.WithdrawalOut(w).data)
