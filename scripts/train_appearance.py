"""Reproduce resources/models/appearance.npz.

  python scripts/train_appearance.py collect [--faces DIR ...]   fit photos -> .cache/appearance/samples
  python scripts/train_appearance.py train                       samples -> resources/models/appearance.npz

Collection fits every annotated photo of ../shared/faces68 and ../shared/faces68_train (resumes;
one npz per photo), training learns the texture model from all collected samples.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "appearance"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=("collect", "train"))
    ap.add_argument("--faces", nargs="*", default=None, help="folders of NAME.jpg + NAME.pts")
    ap.add_argument("--samples", type=Path, default=CACHE / "samples")
    ap.add_argument("--components", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    if args.step == "collect":
        from core.appearance.samples import collect
        from core.fitting.evaluate import annotated_photos
        from core.fitting.fit import FitOptions
        from core.paths import SHARED_DIR
        folders = args.faces or [SHARED_DIR / "faces68", SHARED_DIR / "faces68_train"]
        photos = [p for f in folders for p in annotated_photos(f)]
        # a shorter fit than the app's: geometry matters little for colour statistics
        opts = FitOptions(landmark_steps=150, photo_steps=40)
        print(collect(photos, args.samples, options=opts))
        return 0
    from core.appearance.train import train_and_save
    train_and_save(args.samples, args.out, components=args.components)
    return 0


if __name__ == "__main__":
    sys.exit(main())
