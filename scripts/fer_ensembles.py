"""Which finished expression networks to ship together: FER2013 val accuracy of every ensemble.

    python scripts/fer_ensembles.py w40s8 r40s9 resources/models/fer_vgg.pt#0 --int8

Candidates are what `scripts/train_fer.py --export --members` takes (run names, single-network
model files, `file.pt#k` for one member of an ensemble file). Each is prepared as the export
prepares it (BatchNorm re-estimated on the same clean training faces; with --int8 also
quantized as shipped), its val logits are computed once with and without mirror averaging, and
since the ensemble averages logits (and a member's head is linear), every combination's
accuracy follows from those. Prints one line per combination, best first; last line JSON.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_fer import _best, _subset, int8_calibration_faces, load_npz, recalibrate_bn  # noqa: E402

from core.fer import quantize  # noqa: E402
from core.fer.openset import logits_and_features  # noqa: E402
from core.paths import shared_path  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("candidates", nargs="+")
    ap.add_argument("--bn-recal", type=int, default=8000, help="as the export's --bn-recal (0: off)")
    ap.add_argument("--int8", action="store_true", help="also measure the int8 members as shipped")
    ap.add_argument("--max-size", type=int, default=4, help="largest ensemble to list")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    xt, _ = load_npz(shared_path("fer2013/train.npz"))
    xv, yv = load_npz(shared_path("fer2013/val.npz"))
    bn_faces = xt[_subset(len(xt), args.bn_recal, seed=1)]  # the export's faces
    calib = int8_calibration_faces(xt)
    logits: dict[tuple[str, str], list[torch.Tensor]] = {}  # (precision, view) -> per member (N, 7)
    for name in args.candidates:
        model, _ = _best(name)
        if args.bn_recal:
            model = recalibrate_bn(model, bn_faces)
        variants = {"fp32": model.half().float()}  # the file stores float16 weights
        if args.int8:
            variants["int8"] = quantize.Int8FerNet(quantize.quantize(variants["fp32"], calib), variants["fp32"].head,
                                                   model.width)
        for prec, m in variants.items():
            for view, flip in (("flip", True), ("single", False)):
                logits.setdefault((prec, view), []).append(logits_and_features([m], xv, flip=flip)[0])
        alone = {k: float((v[-1].argmax(1) == yv).float().mean()) for k, v in logits.items()}
        print(f"{name}: " + ", ".join(f"{p} {v} {a:.2%}" for (p, v), a in alone.items()), flush=True)
    rows = []
    for r in range(1, min(args.max_size, len(args.candidates)) + 1):
        for combo in itertools.combinations(range(len(args.candidates)), r):
            row = {"members": [args.candidates[i] for i in combo]}
            for (prec, view), ls in logits.items():
                mean = torch.stack([ls[i] for i in combo]).mean(0)
                row[f"{prec}_{view}"] = round(float((mean.argmax(1) == yv).float().mean()), 4)
            rows.append(row)
    key = "int8_flip" if args.int8 else "fp32_flip"
    rows.sort(key=lambda r: -r[key])
    for row in rows:
        print(" + ".join(row["members"]) + ": " + ", ".join(f"{k} {v:.2%}" for k, v in row.items() if k != "members"))
    print(json.dumps({"best": rows[0], "sorted_by": key}))


if __name__ == "__main__":
    main()
