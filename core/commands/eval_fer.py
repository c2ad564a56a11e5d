"""`python main.py eval-fer`: accuracy, per-class recall and confusion matrix of the shipped
expression classifier on a FER2013-format npz (default ../shared/fer2013/val.npz)."""
from __future__ import annotations

import json
import time
import zipfile

import numpy as np

from core.commands import UserError
from core.paths import MissingDataError, shared_path

NAME = "eval-fer"
HELP = "Evaluate the expression classifier on FER2013 val: accuracy, recall, confusion matrix."


def add_arguments(p) -> None:
    p.add_argument("--npz", default=None, help="FER2013-format npz (default ../shared/fer2013/val.npz)")
    p.add_argument("--model", default=None, help="classifier file (default resources/models/fer_vgg.pt)")
    p.add_argument("--flip", dest="flip", action="store_true", default=None,
                   help="force test-time mirror averaging on (default: as stored in the model file)")
    p.add_argument("--no-flip", dest="flip", action="store_false", help="force mirror averaging off")


def evaluate_npz(npz, model=None, flip: bool | None = None) -> dict:
    """flip None: the configuration stored in the model file."""
    from core.fer import FER_CLASSES, ExpressionClassifier
    try:
        with np.load(npz, allow_pickle=False) as data:
            images, labels = data["images"], data["labels"].astype(int)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{npz} is not a FER2013-format npz (uint8 'images' (N,48,48), int 'labels'): "
                         f"{exc}") from exc
    if images.ndim != 3 or images.shape[1:] != (48, 48) or len(images) != len(labels):
        raise ValueError(f"{npz}: expected images (N,48,48) and N labels, got {images.shape} and {labels.shape}")
    clf = ExpressionClassifier(model, flip=flip)
    t = time.perf_counter()
    pred = np.concatenate([clf.predict(images[i:i + 512]).probs.argmax(1) for i in range(0, len(images), 512)])
    secs = time.perf_counter() - t
    k = len(FER_CLASSES)
    cm = np.zeros((k, k), int)
    np.add.at(cm, (labels, pred), 1)
    recall = cm.diagonal() / np.maximum(cm.sum(1), 1)
    return {"n": int(len(labels)), "accuracy": round(float((pred == labels).mean()), 4),
            "recall": {c: round(float(r), 4) for c, r in zip(FER_CLASSES, recall)},
            "confusion": cm.tolist(), "crops_per_s": round(len(labels) / secs, 1),
            "model": str(clf.path), "flip_tta": clf.flip, "members": len(clf.models)}


def run(args) -> int:
    try:
        npz = shared_path("fer2013/val.npz", args.npz, "FER2013 val split")
    except MissingDataError as exc:
        raise UserError(str(exc)) from exc
    try:
        res = evaluate_npz(npz, args.model, flip=args.flip)
    except (FileNotFoundError, ValueError) as exc:  # missing or damaged model / npz
        raise UserError(str(exc)) from exc
    from core.fer import FER_CLASSES
    print(f"{res['n']} images from {npz}; model {res['model']}")
    print(f"accuracy {res['accuracy']:.2%}")
    print("per-class recall: " + ", ".join(f"{c} {r:.1%}" for c, r in res["recall"].items()))
    print("confusion (rows true, columns predicted):")
    print("          " + " ".join(f"{c[:7]:>8}" for c in FER_CLASSES))
    for c, row in zip(FER_CLASSES, res["confusion"]):
        print(f"{c:>9} " + " ".join(f"{v:8d}" for v in row))
    print(json.dumps(res))
    return 0
