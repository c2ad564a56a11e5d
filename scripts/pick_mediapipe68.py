"""Print the MediaPipe face-mesh vertex nearest each of the 68 iBUG points (core.fer.au.MP_TO_68).

    python scripts/pick_mediapipe68.py [--faces ../shared/faces68_train] [--every 10] [--photos 60]

For every point: the vertex (of 468) with the smallest median distance to the annotated point
over the photos, in inter-ocular distances. Uses faces68_train only (faces68 is the benchmark).
About 30 s on 2 cores.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.fer.au import MP_TO_68  # noqa: E402
from core.fitting.evaluate import read_pts  # noqa: E402
from core.paths import shared_path  # noqa: E402
from core.tracking import FaceTracker  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", default=None, help="NAME.jpg + NAME.pts folder (default ../shared/faces68_train)")
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--photos", type=int, default=60)
    args = ap.parse_args()
    folder = Path(args.faces) if args.faces else shared_path("faces68_train")
    photos = sorted(folder.glob("*.jpg"))[::args.every][:args.photos]
    dist = []
    with FaceTracker(num_faces=1) as tracker:
        for p in photos:
            faces = tracker.detect(cv2.imread(str(p)))
            if not faces or not p.with_suffix(".pts").is_file():
                continue
            gt = read_pts(p.with_suffix(".pts"))
            iod = np.linalg.norm(gt[36:42].mean(0) - gt[42:48].mean(0))
            mesh = faces[0].landmarks[:468, :2]
            dist.append(np.linalg.norm(gt[:, None] - mesh[None], axis=2) / iod)
    if not dist:
        print("error: no photo with a face and a .pts file", file=sys.stderr)
        return 2
    med = np.median(np.array(dist), 0)
    best = med.argmin(1)
    print(f"{len(dist)} photos; median distance: shipped table "
          f"{med[np.arange(68), list(MP_TO_68)].mean():.3f}, nearest vertices {med[np.arange(68), best].mean():.3f}")
    print("MP_TO_68 =", tuple(int(i) for i in best))
    return 0


if __name__ == "__main__":
    sys.exit(main())
