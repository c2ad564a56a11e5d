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
    from ..animation.audio import read_audio
    from ..animation.files import save_clip
    from ..listener.attitude import attitude_weights
    from ..listener.data import make_speaker, motion_to_clip, speaker_condition
    from ..listener.generate import Listener

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
    att, described = attitude_weights(args.attitude)
    say(f"attitude: {described}")

    audio = read_audio(args.speaker_audio or args.speaker_video, required=False)
    clip = None
    if args.speaker_video:
        from ..animation.track import NoFaceError, track_video
        try:
            clip, stats = track_video(args.speaker_video, with_audio=False,
                                      progress=lambda f, s: say(f"[{f:4.0%}] {s}") if f in (0.0,) else None)
            if stats.face_share < 0.5:
                say(f"notice: a face was found in only {stats.face_share:.0%} of the speaker's frames")
        except NoFaceError:
            say("notice: no face in the speaker's video: the listener follows the audio alone")
    if audio is None:
        if clip is None:
            raise UserError(f"{Path(args.speaker_audio or args.speaker_video).name} has neither sound nor a face")
        import numpy as np
        say("notice: the speaker's video has no sound: the listener follows the face alone")
        from ..animation.clip import AudioTrack
        audio = AudioTrack(np.zeros(int(clip.duration * 16000), np.float32), 16000)
    if clip is not None and abs(clip.duration - audio.duration) > 0.5:
        say(f"notice: the audio ({audio.duration:.1f} s) and video ({clip.duration:.1f} s) differ in length: "
            f"the audio's length is used, the speaker's motion is cut or held")
    speaker = make_speaker(Path(args.speaker_video or args.speaker_audio).stem, audio.samples, clip)
    if speaker.feat.silent:
        say("notice: the speaker's audio is silent: the listener idles")
    cond = speaker_condition(speaker, listener.mean, listener.std, use_video=clip is not None)
    t0 = time.perf_counter()
    motion, info = listener.generate(cond, att, seed=args.seed, steps=args.steps,
                                     progress=lambda f, s: say(f"[{f:4.0%}] {s}"))
    gen_s = time.perf_counter() - t0
    duration = len(motion) / 25.0
    say(f"generated {duration:.1f} s of listening in {gen_s:.2f} s ({duration / max(gen_s, 1e-9):.1f}x real time, "
        f"{info['segments']} segments, {len(info['joins'])} joins refined)")
    result = motion_to_clip(motion, name=f"Listener ({args.attitude})", audio=audio, source="listener",
                            meta={"attitude": described, "seed": args.seed, "speaker": str(args.speaker_video or
                                                                                           args.speaker_audio)})
    if args.clip:
        save_clip(result, args.clip)
        print(args.clip)
    if not args.no_video:
        from ..animation.export import export_clip_mp4
        stats = export_clip_mp4(result, out, avatar, size=args.size,
                                side_by_side=args.speaker_video if args.side_by_side else None,
                                progress=lambda f, s: say(f"[{f:4.0%}] {s}") if int(f * 100) % 10 == 0 else None)
        say(f"rendered {stats['frames']} frames at {stats['render_fps']:.1f} frames/s")
        print(out)
    return 0
