"""Rebuild resources/models/landmarks68_calibration.npz: where 300-W style annotations put the
68 landmarks relative to the face model's own landmark points (see core/fitting/correspondence.py).

    python scripts/calibrate_landmarks68.py [--faces DIR]     # default ../shared/faces68, ~3 min

Prints the cross-validated error (each photo with a calibration learned without it) beside the
uncalibrated one, then writes the calibration learned on all photos.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.fitting import FaceFitter  # noqa: E402
from core.fitting.correspondence import CALIBRATION68_PATH, save_landmark_calibration  # noqa: E402
from core.fitting.evaluate import calibration_study  # noqa: E402
from core.paths import shared_path  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", default=None)
    ap.add_argument("--out", default=str(CALIBRATION68_PATH))
    args = ap.parse_args()
    folder = shared_path("faces68", args.faces, "annotated photos")
    study = calibration_study(FaceFitter(), folder)
    for k in ("raw", "cross_validated", "in_sample"):
        print(k, json.dumps({a: round(b, 4) if isinstance(b, float) else b for a, b in study[k].items()}))
    calib = study["calibration"]
    calib["meta"].update({"source": str(folder), "cross_validated_nme": round(study["cross_validated"]["nme_mean"], 4),
                          "raw_nme": round(study["raw"]["nme_mean"], 4)})
    print(f"wrote {save_landmark_calibration(calib, args.out)}")


if __name__ == "__main__":
    main()
