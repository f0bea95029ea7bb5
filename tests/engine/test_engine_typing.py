"""matcher/engine is strictly typed and importable without Django."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_strict() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "matcher/engine"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_engine_imports_without_django() -> None:
    code = (
        "import sys, matcher.engine, matcher.engine.core, matcher.engine.amounts, matcher.engine.events;"
        "assert 'django' not in sys.modules, 'django imported';"
        "assert not any(m.startswith(('grpc', 'psycopg', 'confluent_kafka')) for m in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
