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
    p.add_argument("--unknown-npz", default=None,
                   help="faces of expressions the model was not trained on (labels ignored): report AUROC and "
                        "FPR at 95%% TPR of the shipped unknown score, --npz being the known faces")
    p.add_argument("--transductive", action="store_true",
                   help="with --unknown-npz: also score known and unknown faces together as one pool "
                        "(core.fer.transductive, after Zhang et al.), reported separately")
    p.add_argument("--trans-epochs", type=int, default=4, help="training passes of the transductive scoring")


def _load_images(npz, need_labels: bool = True):
    try:
        with np.load(npz, allow_pickle=False) as data:
            images = data["images"]
            labels = data["labels"].astype(int) if need_labels or "labels" in data.files else None
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{npz} is not a FER2013-format npz (uint8 'images' (N,48,48), int 'labels'): "
                         f"{exc}") from exc
    if images.ndim != 3 or images.shape[1:] != (48, 48) or (labels is not None and len(images) != len(labels)):
        raise ValueError(f"{npz}: expected images (N,48,48) and N labels, got {images.shape} and "
                         f"{None if labels is None else labels.shape}")
    if len(images) == 0:
        raise ValueError(f"{npz} holds no images")
    return images, labels


def fpr_at_tpr(known: np.ndarray, unknown: np.ndarray, tpr: float = 0.95) -> float:
    """Known faces are the positives: at the threshold that accepts `tpr` of them (score <= t),
    the share of unknown faces accepted too (the usual FPR95 of out-of-distribution work).
    (core.fer.openset.fpr_at_tpr is the same; this copy keeps the CLI's import free of torch.)"""
    t = np.quantile(known, tpr)
    return float((unknown <= t).mean())


def evaluate_unknown(known_npz, unknown_npz, model=None, flip: bool | None = None,
                     transductive: bool = False, trans_epochs: int = 4) -> dict:
    """AUROC / FPR95 of the classifier's unknown score, known faces vs. unknown faces. The raw
    score (before the 0..1 calibration, which clips and would tie the extremes) ranks the faces."""
    import torch

    from core.fer import ExpressionClassifier
    from core.fer.model import ensemble_forward, normalize
    from core.fer.openset import auroc, unknown_scores
    known, known_labels = _load_images(known_npz)
    unknown, _ = _load_images(unknown_npz, need_labels=False)
    clf = ExpressionClassifier(model, flip=flip)

    def scores(images):
        raw, pred = [], []
        with torch.inference_mode():
            for i in range(0, len(images), 512):
                x = normalize(torch.from_numpy(np.ascontiguousarray(images[i:i + 512])))
                logits, feats = ensemble_forward(clf._predict_models, x, clf.flip)
                raw.append(unknown_scores(logits, feats, clf._means)[clf.unknown_method])
                pred.append(logits.argmax(1).numpy())
        return np.concatenate(raw), np.concatenate(pred)

    s_known, pred = scores(known)
    s_unknown, _ = scores(unknown)
    trans = None
    if transductive:  # one pool, known and unknown together; the unknown file's labels stay unused
        from core.fer.transductive import transductive_scores
        t = time.perf_counter()
        s = transductive_scores(clf.models, np.concatenate([known, unknown]), epochs=trans_epochs)["score"]
        sk, su = s[:len(known)], s[len(known):]
        trans = {"auroc": round(auroc(sk, su), 4), "fpr_at_95_tpr": round(fpr_at_tpr(sk, su), 4),
                 "epochs": trans_epochs, "seconds": round(time.perf_counter() - t, 1)}
    return {"transductive": trans, "known": int(len(known)), "unknown": int(len(unknown)), "score": clf.unknown_method,
            "auroc": round(auroc(s_known, s_unknown), 4), "fpr_at_95_tpr": round(fpr_at_tpr(s_known, s_unknown), 4),
            "known_accuracy": round(float((pred == known_labels).mean()), 4), "model": str(clf.path)}


def evaluate_npz(npz, model=None, flip: bool | None = None) -> dict:
    """flip None: the configuration stored in the model file."""
    from core.fer import FER_CLASSES, ExpressionClassifier
    images, labels = _load_images(npz)
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
    if args.unknown_npz:
        try:
            res = evaluate_unknown(npz, args.unknown_npz, args.model, flip=args.flip,
                                   transductive=args.transductive, trans_epochs=args.trans_epochs)
        except (FileNotFoundError, ValueError) as exc:
            raise UserError(str(exc)) from exc
        print(f"known {res['known']} faces ({npz}), unknown {res['unknown']} faces ({args.unknown_npz}); "
              f"model {res['model']}, unknown score '{res['score']}'")
        print(f"AUROC {res['auroc']:.4f} (chance 0.5) | FPR at 95% TPR {res['fpr_at_95_tpr']:.4f} "
              f"(unknown faces accepted when 95% of known faces are) | known accuracy {res['known_accuracy']:.2%}")
        if res["transductive"]:
            t = res["transductive"]
            print(f"transductive (the two files scored as one pool): AUROC {t['auroc']:.4f} | "
                  f"FPR at 95% TPR {t['fpr_at_95_tpr']:.4f} ({t['epochs']} epochs, {t['seconds']} s)")
        print(json.dumps(res))
        return 0
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
