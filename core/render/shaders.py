"""Load GLSL sources from shaders/ by name, with a minimal `#include "file"` and #defines."""
from __future__ import annotations

import re
from functools import lru_cache

from core.paths import SHADERS_DIR

GLSL_VERSION = "#version 330 core"  # what a Qt core-profile context on every platform offers
_INCLUDE = re.compile(r'^\s*#include\s+"([^"]+)"\s*$', re.MULTILINE)


@lru_cache(maxsize=None)
def _read(name: str) -> str:
    path = SHADERS_DIR / name
    if not path.exists():
        raise FileNotFoundError(f"shader {name} not found in {SHADERS_DIR}")
    return path.read_text()


def _expand(name: str, seen: tuple[str, ...] = ()) -> str:
    if name in seen:
        raise ValueError(f"shader include cycle: {' -> '.join(seen + (name,))}")
    return _INCLUDE.sub(lambda m: _expand(m.group(1), seen + (name,)), _read(name))


def expand_includes(code: str) -> str:
    """Expand `#include "file"` lines inside a snippet of GLSL (e.g. generated code)."""
    return _INCLUDE.sub(lambda m: _expand(m.group(1)), code)


def shader_source(name: str, defines: dict[str, str] | None = None,
                  replace: dict[str, str] | None = None) -> str:
    """Full source of shaders/<name>: version line, defines, includes expanded, then
    each key of `replace` (a placeholder such as SCENE_CODE) substituted."""
    head = [GLSL_VERSION] + [f"#define {k} {v}".rstrip() for k, v in (defines or {}).items()]
    body = _expand(name)
    for key, value in (replace or {}).items():
        body = body.replace(key, value)
    return "\n".join(head) + "\n#line 1\n" + body
