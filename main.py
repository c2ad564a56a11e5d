#!/usr/bin/env python3
"""Likeness: `python main.py` starts the studio; `python main.py COMMAND ...` works headless.

Run `python main.py --help` for the list of commands.
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from core.commands import build_parser, is_command

    if argv and is_command(argv[0]) or argv[:1] in (["-h"], ["--help"]):
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(args.run(args) or 0)
    from app.main import run_gui  # Qt is imported only for the GUI

    return run_gui(argv)


if __name__ == "__main__":
    sys.exit(main())
