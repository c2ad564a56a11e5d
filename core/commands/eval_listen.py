"""`python main.py eval-listen`: the listener on held-out speakers against held-out real
listening motion, beside four baselines (random real clip, mirror, mean face, behaviour model)."""
from __future__ import annotations

import json
from pathlib import Path

from . import UserError

NAME = "eval-listen"
HELP = "evaluate the listener model on held-out speakers against real listening motion and baselines"


def add_arguments(p) -> None:
    from ..paths import REPO_ROOT, SHARED_DIR
    p.add_argument("--media", default=str(SHARED_DIR / "media"), help="the shared media folder")
    p.add_argument("--tracked", default=str(REPO_ROOT / ".cache" / "listener" / "tracked"),
                   help="cache of tracked clips (made when missing)")
    p.add_argument("--model", metavar="PATH", help="listener weights (default resources/models/listener.pt)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=8)


def run(args) -> int:
    import torch

    from ..listener.data import LISTENING_VIDEO, TEST_SPEAKERS
    from ..listener.evaluate import evaluate, format_table
    from ..listener.generate import Listener

    media, tracked = Path(args.media), Path(args.tracked)
    if not media.is_dir():
        raise UserError(f"the media folder {media} does not exist (../shared/media)")
    if not 1 <= args.seeds <= 20:
        raise UserError("--seeds must be between 1 and 20")
    torch.set_num_threads(1)
    listener = Listener.load(args.model)
    tracked.mkdir(parents=True, exist_ok=True)
    need = [n for n in (LISTENING_VIDEO, *TEST_SPEAKERS) if n.endswith(".mp4")
            and not (tracked / f"{Path(n).stem}.json").exists()]
    if need:
        from ..animation.files import save_clip
        from ..animation.track import track_video
        for n in need:
            if not (media / n).exists():
                raise UserError(f"{media / n} is missing")
            print(f"tracking {n} (cached in {tracked})")
            save_clip(track_video(media / n)[0], tracked / f"{Path(n).stem}.json")
    result = evaluate(listener, media, tracked, seeds=args.seeds, steps=args.steps)
    print(format_table(result))
    print(f"real listening: {result['real_listening_s']:.0f} s; generation {result['realtime_factor']:.1f}x real time; "
          f"jerk at joins {result['jerk_at_joins']} vs within segments {result['jerk_within_segments']}")
    for k, v in result["checks"].items():
        print(f"  {k}: {v}")
    print(json.dumps(result))
    return 0
