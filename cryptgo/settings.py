"""CryptGO settings: one module, every endpoint and secret from the environment.

Local defaults exist so a laptop runs without configuration; production sets
each variable (or its ``*_FILE`` twin for secrets). The README's configuration
table lists every variable read here.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    """A string setting; ``NAME_FILE`` (a path) wins over ``NAME`` so secrets can live in files."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, default)


def envbool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be a boolean (true/false), got {raw!r}")


def envint(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = envbool("DEBUG", False)
SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    # No silent default: a deployment without a key must fail loudly. The launcher keeps
    # one in var/secret_key and the test settings set their own.
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) must be set")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "channels",
    "django_celery_beat",
    "accounts",
    "markets",
    "trading",
    "matcher",
    "streaming",
    "wallets",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "cryptgo.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = None
ASGI_APPLICATION = "cryptgo.asgi.application"

DATABASE_URL = env("DATABASE_URL", "postgres://postgres@127.0.0.1:54329/cryptgo")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", 0))}
# A per-process connection pool (psycopg_pool) instead of a connection per request: under ASGI every
# request runs in its own thread, so CONN_MAX_AGE cannot reuse connections. 0 = no pool.
DB_POOL_MAX_SIZE = envint("DB_POOL_MAX_SIZE", 0)
if DB_POOL_MAX_SIZE:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 1, "max_size": DB_POOL_MAX_SIZE,
                                                              "timeout": 10}

REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:63799/0")
KAFKA_BOOTSTRAP_SERVERS = env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
KAFKA_TOPIC_PREFIX = env("KAFKA_TOPIC_PREFIX", "cryptgo.")
MATCHER_GRPC_ADDR = env("MATCHER_GRPC_ADDR", "127.0.0.1:50051")
MATCHER_TIMEOUT_SECONDS = envint("MATCHER_TIMEOUT_SECONDS", 10)
# applying a batch and building its rows hold the event loop: smaller batches, steadier latency (docs/matcher.md)
MATCHER_BATCH_MAX = envint("MATCHER_BATCH_MAX", 500)
MATCHER_OUTBOX_RELAY = envbool("MATCHER_OUTBOX_RELAY", True)
MATCHER_SNAPSHOT_EVERY_OPS = envint("MATCHER_SNAPSHOT_EVERY_OPS", 0)
MATCHER_RELAY_TIMEOUT_MS = envint("MATCHER_RELAY_TIMEOUT_MS", 10000)
# delivered outbox rows are deleted this long after delivery; negative keeps them
MATCHER_OUTBOX_KEEP_SECONDS = envint("MATCHER_OUTBOX_KEEP_SECONDS", 86400)
ETH_RPC_URL = env("ETH_RPC_URL", "http://127.0.0.1:8545")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

CHANNEL_LAYERS = {
    "default": {
        # Redis pub/sub: a group message is published once and each web process hands it to its own
        # members, instead of one copy per member in Redis read back one at a time (the core layer):
        # with 1,000 subscribers on a market that was 1,000 Redis round trips per push (ADR 0005).
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        # redis-py 8 reads with a 5 s socket timeout by default; the subscriber connection idles longer.
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}]},
    }
}

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "cryptgo.api.authentication.JWTAuthentication",
        "cryptgo.api.authentication.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["cryptgo.api.throttling.ApiThrottle"],
    "EXCEPTION_HANDLER": "cryptgo.api.exceptions.exception_handler",
    "NUM_PROXIES": envint("API_TRUSTED_PROXIES", 0),
    "COERCE_DECIMAL_TO_STRING": True,
}
# Client API (docs/api.md). Rates are "<n>/<sec|min|hour|day>" or "off"; counted in Redis.
API_THROTTLE_USER_RATE = env("API_THROTTLE_USER_RATE", "1200/min")
API_THROTTLE_IP_RATE = env("API_THROTTLE_IP_RATE", "2400/min")
API_THROTTLE_LOGIN_RATE = env("API_THROTTLE_LOGIN_RATE", "20/min")  # per IP: login, register, refresh
# How far a signed request's timestamp may be from the server's clock (native API and Binance).
API_SIGNATURE_WINDOW_MS = envint("API_SIGNATURE_WINDOW_MS", 5000)
# Fernet keys that encrypt API-key secrets and TOTP seeds; the first encrypts (docs/adr/0003).
API_SECRET_KEYS = envlist("API_SECRET_KEYS", "")
# Where the API reads market data: auto (Redis while run_marketdata's heartbeat is set), redis, database.
MARKET_DATA_SOURCE = env("MARKET_DATA_SOURCE", "auto")
# The ASGI layer that answers hot public reads before Django (cryptgo/fastpath.py, docs/adr/0007).
API_FAST_PATH = envbool("API_FAST_PATH", True)
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=envint("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=envint("JWT_REFRESH_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
}
SPECTACULAR_SETTINGS = {"TITLE": "CryptGO API", "VERSION": "1.0.0", "SERVE_INCLUDE_SCHEMA": False,
                        "COMPONENT_SPLIT_REQUEST": True, "SCHEMA_PATH_PREFIX": r"/api/v[0-9]"}

# Wallets: the web tier holds only the account xpub. The mnemonic (HOT_WALLET_MNEMONIC_FILE or
# HOT_WALLET_MNEMONIC) is deliberately not a setting: wallets.signer reads it from the environment
# where Celery signs, so no settings dump (Django's error reports) can ever contain it.
HOT_WALLET_XPUB = env("HOT_WALLET_XPUB", "")
ETH_RPC_TIMEOUT = envint("ETH_RPC_TIMEOUT", 10)
ETH_POA = envbool("ETH_POA", False)  # inject ExtraDataToPOAMiddleware (PoA chains with long extraData)
WALLET_NATIVE_ASSET = env("WALLET_NATIVE_ASSET", "ETH")  # the Asset symbol of the chain's own coin
WALLET_TRACING = env("WALLET_TRACING", "auto")  # auto | debug | trace | off: how internal transfers are found
WALLET_START_BLOCK = env("WALLET_START_BLOCK", "latest")  # first scan starts here: a number or "latest"
WALLET_SCAN_BATCH = envint("WALLET_SCAN_BATCH", 100)  # blocks per scan run
WALLET_REORG_DEPTH = envint("WALLET_REORG_DEPTH", 64)  # deepest reorg handled automatically
WALLET_TOKEN_GAS_LIMIT = envint("WALLET_TOKEN_GAS_LIMIT", 100_000)  # ERC-20 transfer, and ether to a contract

HEALTHZ_TIMEOUT_SECONDS = envint("HEALTHZ_TIMEOUT_SECONDS", 2)

# Market data and the websocket feed (docs/websocket.md). Kafka consumer groups wait up to the
# session timeout for their first rebalance: short by default (development); raise it in production.
KAFKA_SESSION_TIMEOUT_MS = envint("KAFKA_SESSION_TIMEOUT_MS", 6000)
# How long the broker may hold a fetch with nothing new: an upper bound on a push's delay where a broker
# does not answer a waiting fetch as soon as data arrives (librdkafka's default is 500 ms).
KAFKA_FETCH_WAIT_MS = envint("KAFKA_FETCH_WAIT_MS", 20)
MARKETDATA_KAFKA_GROUP = env("MARKETDATA_KAFKA_GROUP", "cryptgo-marketdata")
MARKETDATA_KLINE_KEEP = envint("MARKETDATA_KLINE_KEEP", 10080)  # candles kept per market and interval
MARKETDATA_TICKER_REFRESH_SECONDS = envint("MARKETDATA_TICKER_REFRESH_SECONDS", 5)  # 24h window slides
MARKETDATA_RESYNC_LEVELS = envint("MARKETDATA_RESYNC_LEVELS", 10000)  # book levels fetched after a gap
STREAM_RELAY_KAFKA_GROUP = env("STREAM_RELAY_KAFKA_GROUP", "cryptgo-stream-relay")
STREAM_RELAY_MAX_AGE_SECONDS = envint("STREAM_RELAY_MAX_AGE_SECONDS", 60)  # older events are not pushed
WS_MAX_SUBSCRIPTIONS = envint("WS_MAX_SUBSCRIPTIONS", 100)  # per connection
WS_MAX_MESSAGE_BYTES = envint("WS_MAX_MESSAGE_BYTES", 4096)  # a larger request gets an error reply
WS_SEND_QUEUE = envint("WS_SEND_QUEUE", 1000)  # pushes waiting for a slow client before it is cut off
WS_IDLE_SECONDS = envint("WS_IDLE_SECONDS", 120)  # closed when the client sends nothing (not even server.ping)
WS_RATE_PER_SECOND = envint("WS_RATE_PER_SECOND", 20)  # requests per second per connection (burst: 2x)
WS_MAX_ERRORS = envint("WS_MAX_ERRORS", 20)  # error replies (decaying 1/s) before the connection is closed

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
}
