"""Leave-one-class-out open-set evaluation on FER2013: for each class, a network trained without
it (scripts/train_fer.py --exclude), then every inductive unknown score and the transductive one
(core.fer.transductive) ranking val faces of the left-out class against the other six.

    nohup nice -n 10 python scripts/fer_openset.py --prefix loo16 --epochs 6 --width 16 \\
        > .cache/fer/openset.log 2>&1 &          # trains what is missing (resumable), then scores
    python scripts/fer_openset.py --prefix loo16 --folds fear,happy --no-train   # score only

Writes resources/models/fer_openset_loo.json (per class: closed-set accuracy, AUROC and FPR at 95%
TPR of each score, the transductive figures, timings) after every fold, and prints a summary JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
import train_fer  # noqa: E402
from core.fer import openset  # noqa: E402
from core.fer.model import FER_CLASSES  # noqa: E402
from core.fer.transductive import transductive_scores  # noqa: E402
from core.paths import shared_path  # noqa: E402

INDUCTIVE = ("msp", "maxlogit", "energy", "feature", "mahalanobis", "knn", "flipcam",
             "energy+knn", "energy+mahalanobis", "maxlogit+feature", "energy+knn+flipcam")


def fold_scores(run: str, trans_epochs: int, trans_variants: list[str], seed: int = 0) -> dict:
    model, ck = train_fer._best(run)
    left = ck["args"]["exclude_idx"]
    nc = ck["num_classes"]
    xt, yt = train_fer.load_npz(Path(ck["args"]["train"]), left)
    perm = torch.randperm(len(xt), generator=torch.Generator().manual_seed(seed))
    bank_idx, ref_idx = perm[:10000], perm[10000:12000]  # reference faces kept apart from the bank
    _, ft = openset.logits_and_features(model, xt[bank_idx])
    lr_, fr = openset.logits_and_features(model, xt[ref_idx])
    means = openset.class_means(ft, yt[bank_idx], nc)
    gm, prec = openset.gaussian_fit(ft, yt[bank_idx], nc)
    d = np.load(ck["args"]["val"])
    xv, yv = torch.from_numpy(d["images"]), d["labels"]
    unk = yv == left

    def raw(images, logits, feats) -> dict[str, np.ndarray]:
        s = openset.unknown_scores(logits, feats, means)
        s["mahalanobis"] = openset.mahalanobis(feats, gm, prec).numpy().astype(np.float64)
        s["knn"] = openset.knn_distance(feats, ft).numpy().astype(np.float64)
        s["flipcam"] = openset.flip_cam_inconsistency(model, images).numpy().astype(np.float64)
        return s

    t0 = time.time()
    lv, fv = openset.logits_and_features(model, xv)
    sv, sr = raw(xv, lv, fv), raw(xt[ref_idx], lr_, fr)
    for combo in INDUCTIVE:
        if "+" in combo:
            parts = combo.split("+")
            sv[combo] = openset.rank_combine([sv[p] for p in parts], [sr[p] for p in parts])
    known_pred = lv.argmax(1).numpy()
    yk = yv - (yv > left)
    res = {"left_out": FER_CLASSES[left], "run": run, "epoch": ck["epoch"], "width": ck["args"]["width"],
           "oe_mix": ck["args"].get("oe_mix", 0.0), "train_seconds": round(ck["train_seconds"]),
           "closed_set_val_acc": round(float((known_pred[~unk] == yk[~unk]).mean()), 4),
           "n_known": int((~unk).sum()), "n_unknown": int(unk.sum()),
           "auroc": {k: round(openset.auroc(sv[k][~unk], sv[k][unk]), 4) for k in INDUCTIVE},
           "fpr95": {k: round(openset.fpr_at_tpr(sv[k][~unk], sv[k][unk]), 4) for k in INDUCTIVE},
           "inductive_seconds": round(time.time() - t0, 1), "transductive": {}}
    for variant in trans_variants:  # the pool is the whole val split, known and unknown faces together
        t0 = time.time()
        tr = transductive_scores(model, d["images"], epochs=trans_epochs, seed=seed,
                                 reset_head=(variant == "reset"),
                                 fresh=(variant == "fresh"), lr=3e-3 if variant == "fresh" else 1e-3)
        res["transductive"][variant] = {
            "epochs": trans_epochs, "seconds": round(time.time() - t0, 1),
            **{f"auroc_{k}": round(openset.auroc(tr[k][~unk], tr[k][unk]), 4) for k in ("score", "ce", "consistency")},
            "fpr95": round(openset.fpr_at_tpr(tr["score"][~unk], tr["score"][unk]), 4),
            "pseudo_label_acc_known": round(float((tr["pseudo"][~unk] == yk[~unk]).mean()), 4)}
    return res


def markdown(results: dict[str, dict]) -> str:
    """AUROC / FPR95 per left-out class for every inductive score and the transductive one."""
    rows = sorted(results.values(), key=lambda r: r["left_out"])
    scores = [k for k in INDUCTIVE if all(k in r["auroc"] for r in rows)]
    trans = all("reset" in r.get("transductive", {}) for r in rows)
    head = ["left out", "closed-set acc", *scores] + (["transductive"] if trans else [])
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cells(a, f):
        return [f"{x:.3f} / {y:.2f}" for x, y in zip(a, f)]
    for r in rows:
        t = [(r["transductive"]["reset"]["auroc_score"], r["transductive"]["reset"]["fpr95"])] if trans else []
        out.append("| " + " | ".join([r["left_out"], f"{r['closed_set_val_acc']:.1%}", *cells(
            [r["auroc"][k] for k in scores] + [a for a, _ in t], [r["fpr95"][k] for k in scores] + [f for _, f in t])]) + " |")
    mean = lambda xs: float(np.mean(xs))  # noqa: E731
    ta = [mean([r["transductive"]["reset"]["auroc_score"] for r in rows])] if trans else []
    tf = [mean([r["transductive"]["reset"]["fpr95"] for r in rows])] if trans else []
    out.append("| **mean** | " + f"{mean([r['closed_set_val_acc'] for r in rows]):.1%} | " + " | ".join(cells(
        [mean([r["auroc"][k] for r in rows]) for k in scores] + ta,
        [mean([r["fpr95"][k] for r in rows]) for k in scores] + tf)) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prefix", default="loo16", help="runs are .cache/fer/<prefix>_<class>")
    ap.add_argument("--folds", default=",".join(FER_CLASSES))
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--oe-mix", type=float, default=0.0)
    ap.add_argument("--no-train", action="store_true", help="score existing runs only")
    ap.add_argument("--trans-epochs", type=int, default=6)
    ap.add_argument("--trans", default="reset", help="transductive variants: reset,keep,fresh (head re-initialised, kept, or all weights fresh); '' none")
    ap.add_argument("--out", default=str(train_fer.OPENSET_RESULTS))
    ap.add_argument("--table", action="store_true", help="print the recorded results as markdown tables and exit")
    args = ap.parse_args()
    if args.table:
        print(markdown(json.loads(Path(args.out).read_text())))
        return
    torch.set_num_threads(1)
    shared_path("fer2013/train.npz", None, "FER2013 train split")
    out = Path(args.out)
    for c in args.folds.split(","):
        run = f"{args.prefix}_{c}"
        if not args.no_train:
            cmd = [sys.executable, str(ROOT / "scripts" / "train_fer.py"), "--run", run, "--exclude", c,
                   "--epochs", str(args.epochs), "--width", str(args.width), "--bf16", "--threads", "1",
                   "--ckpt-every", "100", "--oe-mix", str(args.oe_mix)]
            done = (train_fer.CACHE / run / "log.jsonl").exists() and \
                len((train_fer.CACHE / run / "log.jsonl").read_text().splitlines()) >= args.epochs
            if not done:
                subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        res = fold_scores(run, args.trans_epochs, [v for v in args.trans.split(",") if v])
        print(json.dumps(res), flush=True)
        results = json.loads(out.read_text()) if out.exists() else {}
        results[c] = res
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        tmp.replace(out)
    results = json.loads(out.read_text())
    summary = {k: round(float(np.mean([r["auroc"][k] for r in results.values()])), 4) for k in INDUCTIVE}
    print(json.dumps({"folds": len(results), "mean_auroc": summary}))


if __name__ == "__main__":
    main()
