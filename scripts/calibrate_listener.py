#!/usr/bin/env python3
"""Fits the listener's expression calibration on TRAINING clips and stores it in the weights
file's meta (core/listener/calibrate.py; weights unchanged). Run after train_listener.py.

The network generates (attentive, uncalibrated) for every training speaker with a few seeds;
the constants match its slow/fast expression statistics to the real listening frames of the
training part of conversation_a. No held-out speaker or held-out listening frame is read.

    nice -n 10 python scripts/calibrate_listener.py [--seeds 3] [--guidance 1.5]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from core.paths import SHARED_DIR

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--media", type=Path, default=SHARED_DIR / "media")
    ap.add_argument("--tracked", type=Path, default=ROOT / ".cache" / "listener" / "tracked")
    ap.add_argument("--model", type=Path, default=ROOT / "resources" / "models" / "listener.pt")
    ap.add_argument("--out", type=Path, default=None, help="default: overwrite --model")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--guidance", type=float, default=None,
                    help="store this guidance scale in the meta (Listener.generate's default) and fit at it")
    args = ap.parse_args()

    import numpy as np
    import torch
    torch.set_num_threads(1)
    from core.listener.calibrate import fit_calibration
    from core.listener.data import (
        TRAIN_SPEAKERS,
        listening_runs,
        load_speaker,
        speaker_condition,
    )
    from core.listener.generate import Listener
    from core.safeload import torch_load

    listener = Listener.load(args.model)
    if args.guidance is not None:
        if not 1.0 <= args.guidance <= 5.0:
            print("error: --guidance must be between 1 and 5", file=sys.stderr)
            return 2
        listener.meta["guidance"] = args.guidance       # the samples are fitted as they will be drawn
    att = np.array([1, 0, 0, 0], np.float32)
    generated = []
    for name in TRAIN_SPEAKERS:
        if not (args.media / name).exists():
            print(f"  {name}: missing, skipped")
            continue
        sp = load_speaker(args.media / name, args.tracked)
        cond = speaker_condition(sp, listener.mean, listener.std, use_video=True)
        for seed in range(args.seeds):
            _, info = listener.generate(cond, att, seed=seed, calibrate=False)
            generated.append(info["uncalibrated"])
        print(f"  {name}: {sp.frames} frames x {args.seeds} seeds")
    if not generated:
        print("error: no training speaker found in", args.media)
        return 2
    real = [(r - listener.mean) / listener.std for r in listening_runs(args.tracked, "train")]
    cal = fit_calibration(generated, real)
    e = slice(0, 53)
    print(f"expression scale (slow) median {np.median(cal['scale'][e]):.2f}, "
          f"fast median {np.median(cal['fast_scale'][e]):.2f}")
    blob = torch_load(args.model, max_bytes=64 << 20)
    meta = json.loads(blob.get("meta", "{}"))
    meta["calibration"] = cal
    if args.guidance is not None:
        meta["guidance"] = args.guidance
    meta["calibration_fit"] = {"speakers": [n for n in TRAIN_SPEAKERS if (args.media / n).exists()],
                               "seeds": args.seeds, "listening": "conversation_a train part"}
    blob["meta"] = json.dumps(meta)
    out = args.out or args.model
    tmp = out.with_suffix(".tmp")
    torch.save(blob, tmp)
    tmp.replace(out)
    Listener.load(out)                       # it reads back
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
