#!/usr/bin/env python3
"""Benchmark the shipped face model: quality vs ICT FaceKit + speed; last line is JSON.

    python bench/face_model.py [--facekit PATH] [--samples 50] [--seed 0]
Same figures as `python main.py eval-face-model`; without FaceKit only the speed part runs.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    import torch

    from core.facemodel.evaluate import TARGETS, evaluate, format_report, timings
    from core.facemodel.model import DEFAULT_PATH, FaceModel
    from core.paths import MissingDataError

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--facekit")
    p.add_argument("--model")
    p.add_argument("--samples", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resolution", type=int, default=128)
    args = p.parse_args()
    torch.set_num_threads(2)
    path = Path(args.model) if args.model else DEFAULT_PATH
    model = FaceModel.load(path)
    try:
        from core.facekit import load_facekit
        from core.facemodel.data import FaceData
        data = FaceData(load_facekit(args.facekit))
    except MissingDataError as exc:
        print(f"FaceKit unavailable ({exc}); speed only")
        out = {"model": timings(model, args.resolution)}
        out["model"]["weights_mb"] = round(path.stat().st_size / 1e6, 2)
        for k in ("extract_s", "frame_ms", "weights_mb"):
            print(f"  {k:18s} {out['model'][k]:.4f}  target <= {TARGETS[k]}")
        print(json.dumps(out))
        return 0
    out = evaluate(model, data, args.samples, args.seed, args.resolution, model_path=path)
    for line in format_report(out):
        print(line)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
