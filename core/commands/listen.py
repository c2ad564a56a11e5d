"""`python main.py listen`: a listening avatar for a speaker's audio (and video): the listener
model generates the motion, the avatar is rendered to MP4 with the speaker's audio."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from . import UserError

NAME = "listen"
HELP = "generate a listening avatar for a speaker's audio/video (MP4 with sound, optional clip)"


def add_arguments(p) -> None:
    p.add_argument("--speaker-video", metavar="V", help="the speaker's video (its face is tracked, its sound used)")
    p.add_argument("--speaker-audio", metavar="A", help="the speaker's audio (wav/mp3/m4a or a video's track)")
    p.add_argument("--avatar", metavar="X.likeness", help="the listening avatar (default: the mean face)")
    p.add_argument("--attitude", default="attentive",
                   help="how the listener feels, in words (attentive, amused, sceptical, bored, or a sentence)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=8, help="DDIM steps (default 8)")
    p.add_argument("--side-by-side", action="store_true", help="draw the speaker's video left of the avatar")
    p.add_argument("--size", type=int, default=512, help="frame height in pixels (default 512)")
    p.add_argument("--out", required=True, help="output .mp4")
    p.add_argument("--clip", metavar="OUT.json", help="also save the listener motion as a clip")
    p.add_argument("--model", metavar="PATH", help="listener weights (default resources/models/listener.pt)")
    p.add_argument("--no-video", action="store_true", help="write only --clip, no MP4")


def run(args) -> int:
    from ..animation.files import save_clip
    from ..listener.generate import Listener
    from ..listener.listen import ListenInputError, listen_to

    say = lambda s: print(s, file=sys.stderr)  # noqa: E731
    if not args.speaker_video and not args.speaker_audio:
        raise UserError("give --speaker-video V or --speaker-audio A")
    for opt in ("speaker_video", "speaker_audio"):
        v = getattr(args, opt)
        if v and not Path(v).is_file():
            raise UserError(f"--{opt.replace('_', '-')}: {v} not found")
    out = Path(args.out)
    if not args.no_video and out.suffix.lower() != ".mp4":
        raise UserError(f"--out must end in .mp4, got '{out.name}'")
    if args.clip and Path(args.clip).suffix.lower() != ".json":
        raise UserError("--clip must end in .json")
    for p in (out, Path(args.clip) if args.clip else None):
        if p is not None and not (p.parent if str(p.parent) else Path(".")).is_dir():
            raise UserError(f"the output folder {p.parent} does not exist")
    if args.side_by_side and not args.speaker_video:
        raise UserError("--side-by-side needs --speaker-video")
    if not 1 <= args.steps <= 100:
        raise UserError("--steps must be between 1 and 100")
    listener = Listener.load(args.model)
    avatar = None
    if args.avatar:
        from ..render.scene import load_avatar_file
        avatar = load_avatar_file(args.avatar)
    t0 = time.perf_counter()
    try:
        res = listen_to(listener, args.speaker_video, args.speaker_audio, args.attitude, seed=args.seed,
                      steps=args.steps, notice=lambda s: say(f"notice: {s}"),
                      progress=lambda f, s: say(f"[{f:4.0%}] {s}"))
    except ListenInputError as exc:
        raise UserError(str(exc)) from exc
    gen_s = time.perf_counter() - t0
    say(f"attitude: {res.described}")
    say(f"generated {res.seconds:.1f} s of listening in {gen_s:.2f} s ({res.seconds / max(gen_s, 1e-9):.1f}x "
        f"real time including reading and tracking the speaker, {res.info['segments']} segments, "
        f"{len(res.info['joins'])} joins refined)")
    result = res.clip
    if args.clip:
        save_clip(result, args.clip)
        print(args.clip)
    if not args.no_video:
        from ..animation.export import export_clip_mp4
        stats = export_clip_mp4(result, out, avatar, size=args.size,
                                side_by_side=args.speaker_video if args.side_by_side else None,
                                progress=lambda f, s: say(f"[{f:4.0%}] {s}") if int(f * 100) % 10 == 0 else None)
        say(f"rendered {stats['frames']} frames at {stats['fps']:.1f} frames/s "
            f"(drawing alone {stats['render_fps']:.1f} frames/s)")
        print(out)
    return 0
