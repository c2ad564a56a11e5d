"""Where things live: the repository's resources and the shared data beside the checkout."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESOURCES = REPO_ROOT / "resources"
MODELS_DIR = RESOURCES / "models"
SHADERS_DIR = REPO_ROOT / "shaders"

# Shared data sits beside the checkout (../shared); LIKENESS_SHARED overrides it.
SHARED_DIR = Path(os.environ.get("LIKENESS_SHARED", REPO_ROOT.parent / "shared"))


class MissingDataError(FileNotFoundError):
    """A data file the user must provide is missing; the message says what and where."""


def shared_path(relative: str, given: str | os.PathLike | None = None, what: str = "") -> Path:
    """Resolve a shared data file: an explicit path if given, else ../shared/<relative>.

    Raises MissingDataError with a message naming the file, where it was looked for
    and how to point at it.
    """
    path = Path(given) if given is not None else SHARED_DIR / relative
    if path.is_dir() and given is not None:
        candidate = path / Path(relative).name
        if candidate.exists():
            path = candidate
    if not path.exists():
        label = what or Path(relative).name
        raise MissingDataError(
            f"{label} not found at {path}. "
            f"Pass its path explicitly, or place it at {SHARED_DIR / relative} "
            f"(set LIKENESS_SHARED to use another shared folder)."
        )
    return path
