"""Choosing between the engine's mypyc build and its source (matcher/engine/native.py).

The danger this guards against is a stale build: an engine edited after its build must
run as edited, so a build is only ever picked for the exact sources it was made from."""

from __future__ import annotations

import shutil
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
