"""`python main.py export-clip CLIP --out anim.glb|video.mp4|curves.csv`: export an animation
clip as a GLB animation (morph-target weights + head rotation), an MP4 of the rendered avatar
with the clip's audio (optionally beside a source video) or a CSV of every channel."""
from __future__ import annotations

import sys
from pathlib import Path

from . import UserError

NAME = "export-clip"
HELP = "export an animation clip (.json or a project's clip) to .glb (animation), .mp4 or .csv"


def add_arguments(p) -> None:
    p.add_argument("clip", metavar="CLIP", help="a clip file (.json) or a .likeness project holding clips")
    p.add_argument("--clip-index", type=int, default=0, help="which clip of a project (default 0)")
    p.add_argument("--out", required=True, help="output: .glb, .mp4 or .csv")
    p.add_argument("--avatar", metavar="FILE", help=".likeness avatar to animate (default: the mean face; "
                                                    "a project given as CLIP is its own avatar)")
    p.add_argument("--side-by-side", metavar="VIDEO", help="MP4: draw this video left of the avatar")
    p.add_argument("--size", type=int, default=512, help="MP4 frame height in pixels (default 512)")


def load_clip_arg(path: str, index: int = 0):
    """(clip, avatar or None) from a clip .json or a project's clip number `index`."""
    from ..animation.files import load_clip
    from ..project import load_project

    p = Path(path)
    if not p.is_file():
        raise UserError(f"clip file {path} not found")
    if p.suffix.lower() == ".likeness":
        avatar = load_project(p)
        if not avatar.clips:
            raise UserError(f"{p.name} holds no animation clips")
        if not 0 <= index < len(avatar.clips):
            raise UserError(f"--clip-index {index}: {p.name} holds {len(avatar.clips)} clips")
        return avatar.clips[index], avatar
    return load_clip(p), None


def run(args) -> int:
    from ..animation.export import export_clip_csv, export_clip_glb, export_clip_mp4
    from ..render.scene import load_avatar_file

    out = Path(args.out)
    kind = out.suffix.lower()
    if kind not in (".glb", ".mp4", ".csv"):
        raise UserError(f"--out must end in .glb, .mp4 or .csv, got '{out.name}'")
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise UserError(f"the output folder {out.parent} does not exist")
    if not 64 <= args.size <= 2048:
        raise UserError(f"--size must be between 64 and 2048, got {args.size}")
    if args.side_by_side and kind != ".mp4":
        raise UserError("--side-by-side needs an .mp4 output")
    if args.side_by_side and not Path(args.side_by_side).is_file():
        raise UserError(f"video file {args.side_by_side} not found")
    clip, avatar = load_clip_arg(args.clip, args.clip_index)
    if args.avatar:
        avatar = load_avatar_file(args.avatar)
    report = lambda f, s: print(f"[{f:4.0%}] {s}", file=sys.stderr)  # noqa: E731
    if kind == ".csv":
        export_clip_csv(clip, out)
    elif kind == ".glb":
        if avatar is None:
            from ..avatar import default_avatar
            from ..facemodel import FaceModel
            avatar = default_avatar(FaceModel.load())
        export_clip_glb(avatar, clip, out, progress=report)
    else:
        stats = export_clip_mp4(clip, out, avatar, size=args.size, side_by_side=args.side_by_side,
                                progress=report)
        print(f"rendered {stats['frames']} frames at {stats['fps']:.1f} frames/s "
              f"(drawing alone {stats['render_fps']:.1f}), "
              f"audio: {'yes' if stats['audio'] else 'none'}", file=sys.stderr)
    print(out)
    return 0
