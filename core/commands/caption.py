"""`python main.py caption VIDEO [--json]`: a paragraph on the main character's expression
dynamics in time order, with the structured events behind it (core.caption)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from . import UserError

NAME = "caption"
HELP = "describe the expression dynamics of a video's main character (paragraph + events)"


def add_arguments(p) -> None:
    p.add_argument("video", metavar="VIDEO", help="a video file (mp4, avi, mov, ...) or a clip (.json)")
    p.add_argument("--json", action="store_true", help="print the caption and its events as JSON")
    p.add_argument("--out", default=None, help="also write the JSON to this file")


def run(args) -> int:
    from ..caption import NoFaceError, caption_clip, caption_video

    src = Path(args.video)
    if not src.is_file():
        raise UserError(f"{src} not found")
    try:
        if src.suffix.lower() == ".json":
            from ..animation.files import load_clip
            cap = caption_clip(load_clip(src))
        else:
            cap = caption_video(src, progress=lambda f, s: print(f"[{f:4.0%}] {s}", file=sys.stderr))
    except NoFaceError as exc:
        raise UserError(str(exc)) from None
    data = cap.to_json()
    if args.out:
        from ..paint.files import write_atomic
        out = Path(args.out)
        if not (out.parent if str(out.parent) else Path(".")).is_dir():
            raise UserError(f"the output folder {out.parent} does not exist")
        write_atomic(out, json.dumps(data, indent=1).encode())
    if args.json:
        print(json.dumps(data, indent=1))
    else:
        print(cap.text)
        from ..caption.events import UNSCORED
        print(f"({sum(e.type not in UNSCORED for e in cap.events)} events, {cap.seconds:.1f} s of video "
              f"described in {cap.wall_seconds:.1f} s)", file=sys.stderr)
    return 0
