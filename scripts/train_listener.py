#!/usr/bin/env python3
"""Reproduces resources/models/listener.pt (see MODEL_CARD_listener.md).

1. Tracks the real recordings of ../shared/media into clips (cached in .cache/listener/tracked).
2. Trains the listener DiT on composed pairs (core/listener/train.py), one thread, checkpoint in
   .cache/listener/ckpt.pt (resumes when run again).
3. Exports float16 weights to resources/models/listener.pt.

    nohup nice -n 10 python scripts/train_listener.py --steps 20000 > .cache/listener/train.log 2>&1 &
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from core.paths import SHARED_DIR

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--media", type=Path, default=SHARED_DIR / "media")
    ap.add_argument("--tracked", type=Path, default=ROOT / ".cache" / "listener" / "tracked")
    ap.add_argument("--ckpt", type=Path, default=ROOT / ".cache" / "listener" / "ckpt.pt")
    ap.add_argument("--out", type=Path, default=ROOT / "resources" / "models" / "listener.pt")
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--hours", type=float, default=None, help="stop (and export) after this long")
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--cue-channel", action="store_true",
                    help="condition on the backchannel-cue channel (core/listener/data.py cue_channel)")
    ap.add_argument("--init", type=Path, default=None, help="fine-tune from these listener weights")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--warmup", type=int, default=300)
    args = ap.parse_args()

    import torch
    torch.set_num_threads(1)
    from core.animation.files import save_clip
    from core.animation.track import track_video
    from core.listener.data import LISTENING_VIDEO, TEST_SPEAKERS, TRAIN_SPEAKERS
    from core.listener.train import export, train

    if not args.media.is_dir():
        print(f"error: {args.media} not found (the shared media folder)", file=sys.stderr)
        return 2
    args.tracked.mkdir(parents=True, exist_ok=True)
    args.ckpt.parent.mkdir(parents=True, exist_ok=True)
    for name in (*TRAIN_SPEAKERS, *TEST_SPEAKERS, LISTENING_VIDEO):
        src, dst = args.media / name, args.tracked / f"{Path(name).stem}.json"
        if src.suffix == ".mp4" and not dst.exists():
            clip, stats = track_video(src)
            save_clip(clip, dst)
            print(f"tracked {name}: {stats.frames} frames, face in {stats.face_share:.0%}", flush=True)
    if not args.export_only:
        train(args.media, args.tracked, args.ckpt, steps=args.steps, batch=args.batch,
              log=lambda s: print(s, flush=True),
              time_limit_s=None if args.hours is None else args.hours * 3600,
              cue_channel=args.cue_channel, init=args.init, lr=args.lr, warmup=args.warmup)
    export(args.ckpt, args.out, {"train_speakers": list(TRAIN_SPEAKERS), "test_speakers": list(TEST_SPEAKERS),
                                 "listening": LISTENING_VIDEO, "batch": args.batch,
                                 "cue_channel": args.cue_channel,
                                 "init": None if args.init is None else args.init.name})
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
