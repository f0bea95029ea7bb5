"""Choosing between the engine's mypyc build and its source (matcher/engine/native.py).

The danger this guards against is a stale build: an engine edited after its build must
run as edited, so a build is only ever picked for the exact sources it was made from."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import matcher.engine
from matcher.engine import core, native


def _copy_sources(tmp_path: Path) -> Path:
    pkg = tmp_path / "src" / "matcher" / "engine"
    pkg.mkdir(parents=True)
    for path in native.PACKAGE_DIR.glob("*.py"):
        shutil.copy(path, pkg / path.name)
    return pkg


def _fake_build(root: Path, pkg: Path) -> Path:
    d = native.build_dir(root, pkg)
    (d / "matcher" / "engine").mkdir(parents=True)
    (d / "BUILT").write_text("x\n")
    return d


def test_the_tag_follows_every_engine_source(tmp_path: Path) -> None:
    pkg = _copy_sources(tmp_path)
    assert native.build_tag(pkg) == native.build_tag()
    for name in ("core.py", "events.py"):  # a compiled module, and one whose constants it inlines
        path = pkg / name
        original = path.read_bytes()
        path.write_bytes(original + b"\n# edited\n")
        assert native.build_tag(pkg) != native.build_tag()
        path.write_bytes(original)
    assert native.build_tag(pkg) == native.build_tag()


def test_a_build_for_the_current_sources_goes_first_on_the_path(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(native.ENV, raising=False)
    pkg = _copy_sources(tmp_path)
    d = _fake_build(tmp_path, pkg)
    path = [str(pkg)]
    assert native.activate(path, tmp_path, pkg) is True
    assert path == [str(d / "matcher" / "engine"), str(pkg)]


def test_a_stale_or_unfinished_build_is_never_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(native.ENV, raising=False)
    pkg = _copy_sources(tmp_path)
    d = _fake_build(tmp_path, pkg)
    (pkg / "book.py").write_text((pkg / "book.py").read_text() + "\n# edited after the build\n")
    path = [str(pkg)]
    assert native.activate(path, tmp_path, pkg) is False
    assert path == [str(pkg)]
    # a build directory without its BUILT marker is an interrupted build
    shutil.rmtree(d)
    d = _fake_build(tmp_path, pkg)
    (d / "BUILT").unlink()
    assert native.activate(path, tmp_path, pkg) is False
    assert path == [str(pkg)]


def test_the_environment_can_insist_on_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = _copy_sources(tmp_path)
    _fake_build(tmp_path, pkg)
    monkeypatch.setenv(native.ENV, "python")
    path = [str(pkg)]
    assert native.activate(path, tmp_path, pkg) is False
    assert path == [str(pkg)]


def test_this_process_runs_the_engine_that_was_chosen() -> None:
    """With a build for these sources (``dev.py`` makes one where a C compiler exists), ``core`` is
    the compiled module unless CRYPTGO_ENGINE=python; the test command runs the engine tests both ways."""
    compiled = matcher.engine.COMPILED
    assert core.INTERPRETED is not compiled
    assert core.__file__ is not None
    assert core.__file__.endswith(".py") is not compiled
    if compiled:
        assert Path(core.__file__).parent.parent.parent == native.build_dir()


_RUN_WORKLOAD = """
import hashlib, json, random, sys
sys.path.insert(0, ".")
import matcher.engine
from bench import engine as bench

rng = random.Random(7)
e = bench.setup()
h = hashlib.sha256()
live = []
for c in bench.workload(6000, rng):
    if c[0] == 0:
        r = e.place_limit_int(c[1], bench.MARKET, c[2], c[3], c[4], c[5])
        if r.ok:
            live.append((r.value, c[1]))
    elif c[0] == 1:
        if not live:
            continue
        oid, user = live.pop(c[1] % len(live))
        r = e.cancel_int(user, bench.MARKET, oid, c[2])
    else:
        r = e.place_market_int(c[1], bench.MARKET, c[2], c[3], c[4])
    h.update(json.dumps([r.ok, r.reason, r.value, [ev.to_dict() for ev in r.events]]).encode())
h.update(json.dumps(e.snapshot(), sort_keys=True).encode())
print(matcher.engine.COMPILED, h.hexdigest())
"""


def test_the_compiled_engine_emits_what_the_source_emits() -> None:
    """The same seeded workload (every kind of command, deals, cancels of filled orders
    rejected) through the build and through the source: identical results, events and state."""
    if not (native.build_dir() / "BUILT").exists():
        pytest.skip("no mypyc build here (no C compiler): only the source runs")
    outputs = {}
    for mode in ("compiled", "python"):
        env = {**os.environ, native.ENV: mode}
        out = subprocess.run([sys.executable, "-c", _RUN_WORKLOAD], cwd=native.ROOT, env=env,
                             capture_output=True, text=True, check=True).stdout.split()
        outputs[mode] = out
    assert outputs["compiled"][0] == "True" and outputs["python"][0] == "False"
    assert outputs["compiled"][1] == outputs["python"][1]
