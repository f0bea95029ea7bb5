"""``python -m matcher.build_engine``: compile the engine with mypyc (``matcher.engine.native``).

Exit status 0 when a build for the current sources exists afterwards, 1 (with a message) when
it could not be made, e.g. without a C compiler: the engine then runs interpreted.
"""

from __future__ import annotations

import sys

from matcher.engine import native


def main() -> int:
    try:
        path = native.build()
    except (Exception, SystemExit) as exc:  # setuptools reports a compiler failure as SystemExit
        print(f"engine: the mypyc build failed ({exc}); the engine runs interpreted", file=sys.stderr)
        return 1
    print(f"engine: compiled with mypyc ({path.relative_to(native.ROOT)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
