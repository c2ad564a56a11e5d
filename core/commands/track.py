"""`python main.py track VIDEO --out clip.json`: turn a video into an animation clip (the largest
face's 53 expression weights, head rotation and translation, gaze, and the video's audio)."""
from __future__ import annotations

import sys
from pathlib import Path

from . import UserError

NAME = "track"
HELP = "track the face in a video into an animation clip (.json) with the video's audio"


def add_arguments(p) -> None:
    p.add_argument("video", metavar="VIDEO", help="a video file (mp4, avi, mov, ...)")
    p.add_argument("--out", required=True, help="output clip file (.json)")
    p.add_argument("--max-seconds", type=float, default=None, help="track only the first SEC seconds")
    p.add_argument("--no-audio", action="store_true", help="leave the video's sound track out")
    p.add_argument("--smooth", type=float, default=0.0,
                   help="Gaussian smoothing of the tracked curves, sigma in frames (default 0: raw)")


def run(args) -> int:
    from ..animation.files import save_clip
    from ..animation.track import track_video

    out = Path(args.out)
    if out.suffix.lower() != ".json":
        raise UserError(f"--out must end in .json, got '{out.name}'")
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise UserError(f"the output folder {out.parent} does not exist")
    if not Path(args.video).is_file():
        raise UserError(f"video file {args.video} not found")
    if args.max_seconds is not None and args.max_seconds <= 0:
        raise UserError("--max-seconds must be positive")
    clip, stats = track_video(args.video, max_seconds=args.max_seconds, with_audio=not args.no_audio,
                              progress=lambda f, s: print(f"[{f:4.0%}] {s}", file=sys.stderr))
    if args.smooth > 0:
        clip.smooth(sigma=args.smooth)
    save_clip(clip, out)
    print(f"{out}: {clip.frames} frames at {clip.fps:.3g} fps ({clip.duration:.1f} s), face found in "
          f"{stats.face_share:.0%} of frames, audio: {'yes' if clip.audio is not None else 'none'}; "
          f"tracked at {stats.frames / max(stats.seconds, 1e-9):.1f} frames/s")
    return 0
