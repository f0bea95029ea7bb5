"""Settings read every endpoint from the environment (checked in a fresh interpreter each time)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRINT = (
    "import json, django; from django.conf import settings; django.setup();"
    "db = settings.DATABASES['default'];"
    "print(json.dumps({'db': [db['HOST'], db['PORT'], db['NAME'], db['USER']], 'redis': settings.REDIS_URL,"
    "'kafka': settings.KAFKA_BOOTSTRAP_SERVERS, 'grpc': settings.MATCHER_GRPC_ADDR, 'eth': settings.ETH_RPC_URL,"
    "'celery': settings.CELERY_BROKER_URL, 'debug': settings.DEBUG, 'key': settings.SECRET_KEY,"
    "'hosts': settings.ALLOWED_HOSTS}))"
)


def settings_with(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k not in {"DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "SECRET_KEY", "DEBUG"}}
    clean.update({"DJANGO_SETTINGS_MODULE": "cryptgo.settings", **env})
    return subprocess.run([sys.executable, "-c", PRINT], cwd=ROOT, env=clean, capture_output=True, text=True)


def test_every_endpoint_comes_from_the_environment():
    result = settings_with({
        "SECRET_KEY": "k" * 50,
        "DATABASE_URL": "postgres://ex:pw@db.internal:6543/exchange",
        "REDIS_URL": "redis://cache.internal:6380/2",
        "KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
        "MATCHER_GRPC_ADDR": "matcher.internal:7000",
        "ETH_RPC_URL": "http://geth.internal:8545",
        "CELERY_BROKER_URL": "redis://broker.internal:6379/5",
        "ALLOWED_HOSTS": "exchange.example, api.exchange.example",
    })
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got == {
        "db": ["db.internal", 6543, "exchange", "ex"],
        "redis": "redis://cache.internal:6380/2",
        "kafka": "k1:9092,k2:9092",
        "grpc": "matcher.internal:7000",
        "eth": "http://geth.internal:8545",
        "celery": "redis://broker.internal:6379/5",
        "debug": False,
        "key": "k" * 50,
        "hosts": ["exchange.example", "api.exchange.example"],
    }


def test_debug_is_off_unless_asked():
    assert json.loads(settings_with({"SECRET_KEY": "x"}).stdout)["debug"] is False
    assert json.loads(settings_with({"SECRET_KEY": "x", "DEBUG": "true"}).stdout)["debug"] is True


def test_secret_key_is_read_from_a_file(tmp_path):
    path = tmp_path / "key"
    path.write_text("from-a-file\n")
    assert json.loads(settings_with({"SECRET_KEY_FILE": str(path)}).stdout)["key"] == "from-a-file"


def test_missing_secret_key_fails_loudly():
    result = settings_with({})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_bad_boolean_is_refused():
    result = settings_with({"SECRET_KEY": "x", "DEBUG": "maybe"})
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr
