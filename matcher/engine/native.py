"""The engine's hot modules compiled with mypyc, and the choice between that build and the source.

Why: the engine is plain Python, and interpreted it runs at ~0.85-0.9 of the throughput target
on this machine, after every interpretive saving that keeps the event contract
(docs/engine.md, "Speed"). mypyc compiles the very same modules (``book``, ``core``; they
already pass ``mypy --strict``) into a C extension for CPython, which runs the benchmark
~1.25 times faster. The source stays the engine and its behaviour; the build is an
accelerator, never a requirement (docs/adr/0008-engine-compiled-with-mypyc.md):

* ``python -m matcher.build_engine`` compiles into ``.build/engine-<tag>/``, where the
  tag is a hash of every engine source file and the interpreter's extension suffix. ``dev.py``
  runs it; without a C compiler it fails with a message and everything runs interpreted.
* At import (``matcher/engine/__init__.py``), ``activate`` puts the build for the current tag
  in front of the package's path, so an edited source never meets a stale build: its tag
  differs, and the source runs until the next build.
* ``CRYPTGO_ENGINE=python`` runs the source even where a build exists (the test command runs
  the engine tests that way too, so both stay equal).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sysconfig
import tempfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT = PACKAGE_DIR.parent.parent
#: The modules mypyc compiles: the book and the engine. ``events`` stays interpreted (its
#: NamedTuples are rebuilt at run time), and so do ``amounts`` and ``reasons`` (off the hot path).
COMPILED_MODULES = ("book", "core")
#: ``python`` forces the interpreted engine; anything else (or unset) uses a build when there is one.
ENV = "CRYPTGO_ENGINE"
_READY = "BUILT"  # written last: a build without it is incomplete and never used


def build_tag(package_dir: Path = PACKAGE_DIR) -> str:
    """Hash of every engine source and the extension suffix (Python version, ABI, platform)."""
    h = hashlib.sha256(str(sysconfig.get_config_var("EXT_SUFFIX")).encode())
    for path in sorted(package_dir.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:20]


def build_dir(root: Path = ROOT, package_dir: Path = PACKAGE_DIR) -> Path:
    return root / ".build" / f"engine-{build_tag(package_dir)}"


def activate(package_path: list[str], root: Path = ROOT, package_dir: Path = PACKAGE_DIR) -> bool:
    """Put the current build's modules in front of ``matcher.engine``'s ``__path__``, if there is one.

    Returns whether the compiled engine will be imported."""
    if os.environ.get(ENV) == "python":
        return False
    d = build_dir(root, package_dir)
    if not (d / _READY).exists():
        return False
    package_path.insert(0, str(d / "matcher" / "engine"))
    return True


def build() -> Path:
    """Compile ``COMPILED_MODULES`` with mypyc into ``build_dir()`` (kept if it already exists).

    Compiles in a temporary directory and renames it into place, so that an interrupted
    build is never picked up."""
    target = build_dir()
    if (target / _READY).exists():
        return target
    from mypyc.build import mypycify
    from setuptools import setup  # type: ignore[import-untyped]

    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="engine-build-", dir=target.parent))
    out = work / "lib"
    cwd = Path.cwd()
    try:
        os.chdir(ROOT)  # mypyc names modules by their paths: matcher/engine/core.py -> matcher.engine.core
        sources = [f"matcher/engine/{name}.py" for name in COMPILED_MODULES]
        # group_name keeps the shared runtime inside the package (matcher.engine.engine__mypyc)
        setup(
            name="cryptgo-engine",
            packages=[],
            py_modules=[],
            ext_modules=mypycify(sources, opt_level="3", group_name="matcher.engine.engine",
                                 target_dir=str(work / "c")),
            script_args=["--quiet", "build_ext", "--build-lib", str(out), "--build-temp", str(work / "tmp")],
        )
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        os.chdir(cwd)
    if build_dir() != target:  # a source changed while it compiled: which version went in is unknown
        shutil.rmtree(work, ignore_errors=True)
        raise RuntimeError("an engine source changed during the build; build again")
    (out / _READY).write_text(target.name + "\n")
    try:
        out.rename(target)
    except OSError:  # another build of the same sources finished first: keep that one
        if not (target / _READY).exists():
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # builds of earlier sources are never picked again (processes still running one keep their files)
    for old in target.parent.glob("engine-*"):
        if old != target and (old / _READY).exists():
            shutil.rmtree(old, ignore_errors=True)
    return target
