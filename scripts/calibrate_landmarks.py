"""Rebuild resources/models/landmark_correspondence.npz (MediaPipe landmark -> face-model template).

    python scripts/calibrate_landmarks.py [--facekit PATH] [--photos 120] [--seed 0]

Needs ../shared/facekit (ICT FaceKit) and the shipped face model; ~1 min on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.facekit import load_facekit  # noqa: E402
from core.facemodel import FaceModel  # noqa: E402
from core.facemodel.data import FaceData  # noqa: E402
from core.fitting.correspondence import DEFAULT_PATH, calibrate  # noqa: E402
from core.tracking import FaceTracker  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--facekit", default=None)
    ap.add_argument("--photos", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(DEFAULT_PATH))
    args = ap.parse_args()
    model, data = FaceModel.load(), FaceData(load_facekit(args.facekit))
    with FaceTracker(num_faces=2) as tracker:
        corr = calibrate(model, data, tracker, photos=args.photos, seed=args.seed)
    print(f"wrote {corr.save(args.out)}")


if __name__ == "__main__":
    main()
