#!/usr/bin/env python3
"""Set up and run CryptGO, or its tests, from a fresh clone with nothing but Python 3.11+.

    python3 dev.py run     # .venv + requirements, engine build, local services, migrate, seed, run every process
    python3 dev.py test    # the same set-up, lint, type check, migrations check, the whole test suite

Only the standard library is used here: this file creates the virtualenv that
everything else runs in, and reinstalls requirements only when they change.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
REQUIREMENTS = [ROOT / "requirements.txt", ROOT / "requirements-dev.txt"]


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file must run on any python3 to say so
        sys.exit(f"CryptGO needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in REQUIREMENTS)).hexdigest()
    stamp = VENV / ".requirements.sha256"
    if not stamp.exists() or stamp.read_text() != digest:
        print("installing requirements (first run takes a few minutes)", flush=True)
        args = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        for req in REQUIREMENTS:
            args += ["-r", str(req)]
        subprocess.run(args, check=True, cwd=ROOT)
        stamp.write_text(digest)


def ensure_node_packages() -> None:
    """``npm ci`` the local chain (Anvil, pinned in package.json) when Node.js exists and the lock changed.

    Without Node.js everything but the chain and the wallet tasks still runs. Nothing is printed
    here: the local services (cryptgo.devservices, which both commands run) say so in one line.
    """
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        return
    lock = ROOT / "package-lock.json"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    stamp = ROOT / "node_modules" / ".package-lock.sha256"
    if stamp.exists() and stamp.read_text() == digest:
        return
    print("installing the local chain's npm packages (npm ci)", flush=True)
    # --omit=dev: solc is only needed to recompile contracts/ (npm ci && npm run compile).
    result = subprocess.run([npm, "ci", "--omit=dev", "--no-audit", "--no-fund"], cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"npm ci failed with exit code {result.returncode}")
    stamp.write_text(digest)


def ensure_engine_build() -> None:
    """Compile the matching engine with mypyc when its sources changed (matcher/engine/native.py).

    Without a C compiler the build fails with one line and the engine runs interpreted, as it
    also does with CRYPTGO_ENGINE=python."""
    if os.environ.get("CRYPTGO_ENGINE") == "python":
        return
    subprocess.run([str(PY), "-m", "matcher.build_engine"], cwd=ROOT)


def engine_compiled() -> bool:
    """Whether ``matcher.engine`` imports the mypyc build here."""
    out = subprocess.run([str(PY), "-c", "import matcher.engine as e; print(e.COMPILED)"],
                         cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() == "True"


def run_checked(*cmd: str, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(cmd), flush=True)
    result = subprocess.run(cmd, cwd=ROOT, env=env)
    if result.returncode != 0:
        sys.exit(result.returncode)


def cmd_run(args: list[str]) -> int:
    os.chdir(ROOT)
    os.execv(str(PY), [str(PY), "-m", "cryptgo.launcher", *args])


def cmd_test(args: list[str]) -> int:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "cryptgo.settings_test"}
    run_checked(str(VENV / "bin" / "ruff"), "check", ".")
    run_checked(str(PY), "-m", "mypy", "--strict", "matcher/engine")
    # Everything below gets its own local services (in a temporary directory) for every URL not set.
    with tempfile.TemporaryDirectory(prefix="cryptgo-test-") as tmp:
        return subprocess.run(
            [str(PY), "-m", "cryptgo.devservices", tmp, "--", str(PY), __file__, "_with_services", *args],
            cwd=ROOT, env=env,
        ).returncode


def cmd_with_services(args: list[str]) -> int:
    """The part of the test command that needs the database: migrations check, then pytest."""
    run_checked(str(PY), "manage.py", "makemigrations", "--check", "--dry-run")
    rc = subprocess.run([str(PY), "-m", "pytest", *args], cwd=ROOT).returncode
    if rc == 0 and not args and engine_compiled():
        # the suite above ran the compiled engine: its own tests run again on the source
        print("+ CRYPTGO_ENGINE=python pytest tests/engine (the interpreted engine)", flush=True)
        env = {**os.environ, "CRYPTGO_ENGINE": "python"}
        rc = subprocess.run([str(PY), "-m", "pytest", "-q", "tests/engine"], cwd=ROOT, env=env).returncode
    return rc


def main() -> int:
    commands = {"run": cmd_run, "test": cmd_test, "_with_services": cmd_with_services}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    if sys.argv[1] != "_with_services":
        ensure_venv()
        ensure_node_packages()
        ensure_engine_build()
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
