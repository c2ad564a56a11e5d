"""Headless subcommands of `python main.py`.

Each module in this package defines `NAME`, `HELP` and `add_arguments(parser)` plus
`run(args) -> int`; a module is listed in COMMAND_MODULES to be picked up. Errors that are
the user's (a missing file, bad input) are raised as `UserError` and printed without a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "batch",
    "render", "export", "train_face_model", "eval_face_model",
    "fer", "eval_fer", "eval_detect", "fit", "eval_fit", "eval_texture", "texture",
    "track", "export_clip", "listen", "eval_listen",
    "generate", "edit", "eval_generate", "caption", "eval_caption", "synth_fer",
)


class UserError(Exception):
    """An error caused by the user's input; printed as a one-line message."""


def _load(name: str):
    try:
        return importlib.import_module(f"core.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"core.commands.{name}":
            return None  # not written yet
        raise


def _modules():
    for name in COMMAND_MODULES:
        mod = _load(name)
        if mod is not None:
            yield mod


def is_command(word: str) -> bool:
    return any(m.NAME == word for m in _modules())


# The error types readers raise for damaged or unsuitable user files (each message is a sentence
# for the user), as (module, class): looked up only in modules already imported, so the CLI never
# imports a heavy module just to check an exception.
USER_ERROR_TYPES = (
    ("core.project", "ProjectError"), ("core.fitting.photo", "PhotoError"),
    ("core.fitting.fit", "FitError"), ("core.fitting.detect", "DetectorError"),
    ("core.tracking.tracker", "TrackerError"), ("core.video.sources", "VideoSourceError"),
    ("core.appearance.model", "AppearanceModelError"), ("core.head.rig", "HeadRigError"),
)


def is_user_error(exc: BaseException) -> bool:
    if isinstance(exc, (UserError, FileNotFoundError, ValueError)):
        return True
    for module, name in USER_ERROR_TYPES:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return True
    return False


def error_line(exc: BaseException, limit: int = 600) -> str:
    """`error: message` on one line (library messages may span several), at most `limit` chars."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return "error: " + (text if len(text) <= limit else text[:limit - 3] + "...")


def _wrap(mod):
    def run(args) -> int:
        try:
            return int(mod.run(args) or 0)
        except Exception as exc:
            if not is_user_error(exc):
                raise
            print(error_line(exc), file=sys.stderr)
            return 2
    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="main.py",
        description="Likeness: 3D face avatars. With no command, starts the studio window.",
        epilog="Studio: python main.py [FILE.likeness] [--screenshot OUT.png] [--quit-after SEC]. "
               "Without a display (Linux) the studio runs on a private Xvfb and says so.",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for mod in _modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(run=_wrap(mod))
    return parser
