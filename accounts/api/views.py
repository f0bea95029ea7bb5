"""Accounts API: register, JWT login/refresh/logout, me, two-factor, API keys."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import selectors, services
from accounts.api import serializers as s
from accounts.models import User
from cryptgo.api.errors import ApiError, NotAuthenticated, NotFound
from cryptgo.api.permissions import JwtOnly
from cryptgo.api.schema import errors
from cryptgo.api.throttling import LoginThrottle


def _valid(serializer_class: type, request: Request) -> dict:
    ser = serializer_class(data=request.data)
    ser.is_valid(raise_exception=True)
    return ser.validated_data


class RegisterApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]

    @extend_schema(tags=["auth"], request=s.RegisterIn, responses={201: s.UserOut, **errors(400, 409)},
                   auth=[], summary="Create an account (email + password)")
    def post(self, request: Request) -> Response:
        data = _valid(s.RegisterIn, request)
        user = services.user_register(email=data["email"], password=data["password"])
        return Response(s.UserOut(user).data, status=status.HTTP_201_CREATED)


class LoginApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]

    @extend_schema(tags=["auth"], request=s.LoginIn, responses={200: s.TokenPairOut, **errors(400, 401)}, auth=[],
                   summary="Log in: a JWT access and refresh token")
    def post(self, request: Request) -> Response:
        data = _valid(s.LoginIn, request)
        user = authenticate(request, email=data["email"].lower(), password=data["password"])
        if user is None or not user.is_active:
            raise NotAuthenticated("invalid_credentials", "Email or password is wrong.")
        refresh = RefreshToken.for_user(user)
        return Response({"access": str(refresh.access_token), "refresh": str(refresh)})


class RefreshApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]

    @extend_schema(tags=["auth"], request=s.RefreshIn, responses={200: s.TokenPairOut, **errors(400, 401)}, auth=[],
                   summary="Exchange a refresh token for a new pair (the old refresh token is blacklisted)")
    def post(self, request: Request) -> Response:
        data = _valid(s.RefreshIn, request)
        ser = TokenRefreshSerializer(data={"refresh": data["refresh"]})
        try:
            ser.is_valid(raise_exception=True)
        except TokenError:
            raise ApiError("token_not_valid", "The refresh token is invalid, expired or blacklisted.",
                           status=401) from None
        return Response({"access": ser.validated_data["access"],
                         "refresh": ser.validated_data.get("refresh", data["refresh"])})


class LogoutApi(APIView):
    permission_classes = [JwtOnly]

    @extend_schema(tags=["auth"], request=s.RefreshIn, responses={204: None, **errors(400, 401, 403)},
                   summary="Log out: blacklist the refresh token")
    def post(self, request: Request) -> Response:
        data = _valid(s.RefreshIn, request)
        services.user_logout(user=request.user, refresh=data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["account"], responses={200: s.UserOut, **errors(401)}, summary="The current user")
    def get(self, request: Request) -> Response:
        # fresh from the database: the authenticated user object may be a few seconds old (JWT user cache)
        return Response(s.UserOut(User.objects.get(pk=request.user.pk)).data)


class TotpEnrolApi(APIView):
    permission_classes = [JwtOnly]

    @extend_schema(tags=["account"], request=None, responses={200: s.TotpEnrolOut, **errors(401, 403, 409)},
                   summary="Start two-factor enrolment: a new TOTP secret (inactive until confirmed)")
    def post(self, request: Request) -> Response:
        enrolment = services.totp_enrol(user=request.user)
        return Response(s.TotpEnrolOut(enrolment).data)


class TotpConfirmApi(APIView):
    permission_classes = [JwtOnly]

    @extend_schema(tags=["account"], request=s.TotpCodeIn, responses={200: s.UserOut, **errors(400, 401, 403, 409)},
                   summary="Confirm enrolment with a code: two-factor is on from now")
    def post(self, request: Request) -> Response:
        data = _valid(s.TotpCodeIn, request)
        services.totp_confirm(user=request.user, code=data["code"])
        return Response(s.UserOut(request.user).data)


class TotpDisableApi(APIView):
    permission_classes = [JwtOnly]

    @extend_schema(tags=["account"], request=s.TotpCodeIn, responses={200: s.UserOut, **errors(400, 401, 403, 409)},
                   summary="Switch two-factor off (needs a current code)")
    def post(self, request: Request) -> Response:
        data = _valid(s.TotpCodeIn, request)
        services.totp_disable(user=request.user, code=data["code"])
        return Response(s.UserOut(request.user).data)


class ApiKeyListCreateApi(APIView):
    permission_classes = [JwtOnly]

    @extend_schema(tags=["account"], responses={200: s.ApiKeyOut(many=True), **errors(401, 403)},
                   summary="List your active API keys (secrets are never shown again)")
    def get(self, request: Request) -> Response:
        return Response(s.ApiKeyOut(selectors.api_keys_for(request.user), many=True).data)

    @extend_schema(tags=["account"], request=s.ApiKeyCreateIn,
                   responses={201: s.ApiKeyCreatedOut, **errors(400, 401, 403, 409)},
                   summary="Create an API key; the secret is in this response only")
    def post(self, request: Request) -> Response:
        data = _valid(s.ApiKeyCreateIn, request)
        created = services.api_key_create(user=request.user, label=data["label"], permissions=data["permissions"],
                                          ip_allowlist=data["ip_allowlist"], totp_code=data.get("totp_code"))
        return Response(s.ApiKeyCreatedOut(created).data, status=status.HTTP_201_CREATED)


class ApiKeyDetailApi(APIView):
    permission_classes = [JwtOnly]

    @extend_schema(tags=["account"], responses={200: s.ApiKeyOut, **errors(401, 403, 404)}, summary="One API key")
    def get(self, request: Request, key_id: int) -> Response:
        key = selectors.api_key_get_for(request.user, key_id)
        if key is None:
            raise NotFound()
        return Response(s.ApiKeyOut(key).data)

    @extend_schema(tags=["account"], responses={204: None, **errors(401, 403, 404)}, summary="Revoke an API key")
    def delete(self, request: Request, key_id: int) -> Response:
        services.api_key_revoke(user=request.user, key_id=key_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
