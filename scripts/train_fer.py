"""Train the FER2013 expression classifier (core.fer.model.FerNet) on CPU, resumably.

    nohup nice -n 19 python scripts/train_fer.py --run main --epochs 30 > .cache/fer/main.log 2>&1 &
    python scripts/train_fer.py --run main --export            # best checkpoint -> resources/models
    python scripts/train_fer.py --export --members e30,s1      # several runs -> one ensemble file
    python scripts/train_fer.py --run loo_surprise --exclude surprise --epochs 3 --width 16
    python scripts/train_fer.py --run loo_surprise --eval-openset   # unknown-score AUROC
    python scripts/train_fer.py --run kd1 --teachers e30,s1 --seed 2   # distil an ensemble into one net

Checkpoints live in .cache/fer/<run>/ (last.pt every --ckpt-every steps and each epoch;
best.pt on a new best val accuracy). Killing and re-running the same command resumes
exactly where it stopped. Augmentation runs batched in torch (no DataLoader workers) so one
thread is enough and the face-model training on the same machine keeps its CPU.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.fer.classifier import _fuse_bn  # noqa: E402
from core.fer.model import ARCHS, FER_CLASSES, FerNet, ensemble_forward, load_models, normalize, save_export  # noqa: E402
from core.fer.openset import SCORES  # noqa: E402
from core.paths import MODELS_DIR, REPO_ROOT, shared_path  # noqa: E402

CACHE = REPO_ROOT / ".cache" / "fer"
OPENSET_RESULTS = MODELS_DIR / "fer_openset_loo.json"  # leave-one-class-out AUROCs, read by the card


def _openset_results() -> dict[str, dict]:
    """The committed leave-one-class-out results, keyed by the class left out (empty if none yet)."""
    return json.loads(OPENSET_RESULTS.read_text()) if OPENSET_RESULTS.exists() else {}


def load_npz(path: Path, exclude: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    d = np.load(path)
    x, y = torch.from_numpy(d["images"]), torch.from_numpy(d["labels"]).long()
    if exclude is not None:  # open-set training: the left-out class is never seen
        keep = y != exclude
        x, y = x[keep], y[keep]
        y = y - (y > exclude).long()  # re-index the remaining classes contiguously
    return x, y


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Batched: small affine (rotate/scale/shift), horizontal flip, brightness/contrast, erasing."""
    n = x.shape[0]
    u = lambda *s: torch.rand(*s, generator=gen)  # noqa: E731
    ang = (u(n) - 0.5) * 2 * math.radians(12)
    scale = 1 + (u(n) - 0.5) * 0.25
    flip = torch.where(u(n) < 0.5, -1.0, 1.0)
    tx, ty = (u(n) - 0.5) * 0.2, (u(n) - 0.5) * 0.2
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1),
                         torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    x = x * (1 + (u(n, 1, 1, 1) - 0.5) * 0.4) + (u(n, 1, 1, 1) - 0.5) * 0.4
    # random erasing of one rectangle in half of the images (occlusion robustness)
    h = x.shape[-1]
    eh, ew = (u(n) * 0.3 * h + 4).long(), (u(n) * 0.3 * h + 4).long()
    ey, ex = (u(n) * (h - eh)).long(), (u(n) * (h - ew)).long()
    r = torch.arange(h)
    mask = ((r[None, :, None] >= ey[:, None, None]) & (r[None, :, None] < (ey + eh)[:, None, None])
            & (r[None, None, :] >= ex[:, None, None]) & (r[None, None, :] < (ex + ew)[:, None, None]))
    mask &= (u(n) < 0.5)[:, None, None]
    return x.masked_fill(mask[:, None], 0.0)


def mixed_outliers(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Synthetic outliers for outlier exposure: blends (weight 0.35-0.65) of two faces of different
    known classes, one per pair of the batch's halves whose labels differ (PROSER-like placeholders:
    faces between the known expressions, never drawn from a left-out class)."""
    h = len(x) // 2
    a, b = x[:h], x[h:2 * h]
    keep = y[:h] != y[h:2 * h]
    lam = (0.35 + 0.3 * torch.rand(h, generator=gen)).view(-1, 1, 1, 1)
    return (lam * a + (1 - lam) * b)[keep].contiguous(memory_format=torch.channels_last)


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(1) == y).float().mean())


def evaluate(model: FerNet, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
    """Accuracy with test-time flip averaging (as shipped); also returns the averaged logits."""
    from core.fer.openset import logits_and_features
    logits, _ = logits_and_features(model.eval(), x, flip=True)
    return _accuracy(logits, y), logits


def sam_ascent(model: nn.Module, closure, rho: float) -> None:
    """Sharpness-aware minimization (Foret et al. 2021): replace the gradients already in
    `model` by the gradients at the worst point within an L2 ball of radius `rho`, so the
    optimizer steps towards flat minima. BatchNorm running statistics are left as the first
    (unperturbed) pass set them."""
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([p.grad.detach().norm() for p in params]))
    scale = rho / (float(norm) + 1e-12)
    saved = [p.detach().clone() for p in params]  # restored exactly, not by subtracting (rounding)
    buffers = [(b, b.detach().clone()) for b in model.buffers()]  # BN running statistics
    with torch.no_grad():
        for p in params:
            p.add_(p.grad, alpha=scale)
    try:
        model.zero_grad(set_to_none=True)
        closure().backward()
    finally:
        with torch.no_grad():
            for p, w in zip(params, saved):
                p.copy_(w)
            for b, v in buffers:  # the perturbed pass does not count towards them
                b.copy_(v)


def lr_at(step: int, total: int, warm: int, peak: float, decay: int | None = None) -> float:
    """Linear warm-up, then cosine to 1% of `peak` over the rest of the run, or with `decay`
    (warmup-stable-decay) constant `peak` until the last `decay` steps and only those cosine.

    The constant phase is what makes a long CPU run extendable across sessions: raise --epochs
    and the run goes on; a --branch-from run decays a copy to measure and ship the weights so far."""
    if step < warm:
        return peak * (step + 1) / warm
    start = warm if decay is None else max(warm, total - decay)
    if step < start:
        return peak
    p = (step - start) / max(1, total - start)
    return peak * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * p)))


def _arch(args: dict) -> str:
    """A run's network family; runs from before --arch existed are VGG-style."""
    return args.get("arch", "vgg")


def _opt(args: dict) -> str:
    """A run's optimizer; runs from before --opt existed used AdamW."""
    return args.get("opt", "adamw")


def _best(run: str | Path) -> tuple[FerNet, dict]:
    """A run's best network and checkpoint record. `run` is a run name (.cache/fer/<run>/best.pt), an
    exported single-network model file (*.pt, e.g. a shipped fer_vgg.pt whose training
    checkpoints are gone) or one member of an exported ensemble (`file.pt#k`, k from 0): its
    record is rebuilt from the file's metadata."""
    path, _, k = str(run).partition("#")
    if path.endswith(".pt"):
        models, meta = load_models(path)
        if len(models) != len(meta.get("members", [])) or (not k and len(models) != 1):
            raise SystemExit(f"{run}: expected a single-network model file, or name a member as {path}#k")
        i = int(k or 0)
        if not 0 <= i < len(models):
            raise SystemExit(f"{run}: the file has {len(models)} members (0..{len(models) - 1})")
        rec = meta["members"][i]
        return models[i], {"ema": models[i].state_dict(), "num_classes": models[0].head.out_features,
                           "classes": list(meta["classes"]), "epoch": rec["epoch"], "val_acc": rec["val_acc"],
                           "train_seconds": rec["train_seconds"], "args": rec["args"], "run": rec["run"]}
    ck = torch.load(CACHE / run / "best.pt", map_location="cpu", weights_only=True)
    model = FerNet(num_classes=ck["num_classes"], width=ck["args"]["width"], arch=_arch(ck["args"]))
    model.load_state_dict(ck["ema"])
    return model.eval(), ck


def initial_weights(spec: str | Path, width: int, num_classes: int, arch: str = "vgg") -> dict[str, torch.Tensor]:
    """--init-from: float32 weights of a model file's (first) network or a checkpoint's EMA, checked
    against the run's width and classes, so a run can continue from a shipped model whose
    training checkpoints are gone."""
    model = load_models(spec)[0][0]
    if (model.arch, model.width, model.head.out_features) != (arch, width, num_classes):
        raise SystemExit(f"--init-from {spec}: {model.arch} width {model.width} / {model.head.out_features} classes; "
                         f"this run asks for {arch} width {width} / {num_classes} classes")
    return model.state_dict()


def _subset(n: int, k: int, seed: int) -> torch.Tensor:
    """k of n indices in a fixed random order (the same faces on every call with this seed)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k]


def int8_calibration_faces(train_images: torch.Tensor) -> torch.Tensor:
    """The 2,000 normalised training faces the export calibrates int8 activation ranges on."""
    return normalize(train_images[_subset(len(train_images), 2000, seed=0)])


def recalibrate_bn(model: FerNet, images: torch.Tensor, batch: int = 500) -> FerNet:
    """Re-estimate every BatchNorm's running mean/variance on clean faces (originals and mirrors).

    The EMA carries statistics of augmented batches (erased rectangles, jittered contrast), which
    differ from the clean, mirrored faces the network sees at inference. Only BN layers switch to
    training mode; momentum None makes the estimate a plain average over the batches."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    x = normalize(images)
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = x[i:i + batch]
            model(torch.cat([xb, xb.flip(-1)]))
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    return model.eval()


def export(runs: list[str], out: Path, score: str, flip: bool, bn_recal: int = 0) -> dict:
    """Best checkpoints of `runs` -> one float16 inference file (an ensemble when several), with
    open-set calibration; accuracy is re-measured on the file after the cast. With `bn_recal`,
    BatchNorm statistics are first re-estimated on that many clean training faces."""
    from core.fer import openset, quantize
    from core.fer.classifier import ExpressionClassifier
    best = [_best(r) for r in runs]
    models, cks = [m for m, _ in best], [ck for _, ck in best]
    runs = [c.get("run", r) for r, c in zip(runs, cks)]  # a model file member keeps its run's name
    ck = cks[0]
    if len({(c["num_classes"], c["args"]["exclude_idx"]) for c in cks}) != 1:
        raise SystemExit("ensemble members must be trained on the same classes")
    xt, yt = load_npz(Path(ck["args"]["train"]), ck["args"]["exclude_idx"])
    xv, yv = load_npz(Path(ck["args"]["val"]), ck["args"]["exclude_idx"])
    sub = _subset(len(xt), 8000, seed=0)  # class means; its first 2,000 calibrate int8
    acc_ema_bn = None
    if bn_recal:
        lv, _ = openset.logits_and_features(models, xv, flip=flip)
        acc_ema_bn = _accuracy(lv, yv)
        models = [recalibrate_bn(m, xt[_subset(len(xt), bn_recal, seed=1)]) for m in models]
    _, ft = openset.logits_and_features(models, xt[sub], flip=flip)
    means = openset.class_means(ft, yt[sub], ck["num_classes"])
    lv, fv = openset.logits_and_features(models, xv, flip=flip)
    raw = openset.unknown_scores(lv, fv, means)[score]
    acc32 = _accuracy(lv, yv)
    meta = {"classes": ck["classes"], "flip": flip, "val_acc": acc32, "bn_recal": bn_recal,
            "members": [{"run": r, **{k: c[k] for k in ("epoch", "val_acc", "train_seconds", "args")}}
                        for r, c in zip(runs, cks)],
            "openset": {"score": score, "means": means.numpy(), "quantiles": openset.calibrate(raw)}}
    save_export(models, out, meta, half=True)
    m16, _ = load_models(out)  # float16 must hold up
    logits16, _ = openset.logits_and_features(m16, xv, flip=flip)
    acc16 = _accuracy(logits16, yv)
    # int8 feature extractors calibrated on training faces, from the float16-rounded weights
    calib = int8_calibration_faces(xt)
    save_export(m16, out, meta, half=True, int8_models=[quantize.quantize(m, calib) for m in m16])
    clf = ExpressionClassifier(out, threads=None)  # exactly what ships: measure the file's default path
    pred = torch.cat([torch.from_numpy(clf.predict(xv[i:i + 512].numpy()).probs.argmax(1))
                      for i in range(0, len(xv), 512)])
    acc_shipped = float((pred == yv).float().mean())
    recall = {c: round(float((pred[yv == k] == k).float().mean()), 4) for k, c in enumerate(ck["classes"])}
    info = {"exported": str(out), "runs": runs, "flip": flip,
            "member_val_acc": [round(c["val_acc"], 4) for c in cks],
            "member_epochs": [f"{c['epoch']}/{c['args']['epochs']}" for c in cks],
            "member_recipes": [_member_recipe(c["args"], c["epoch"]) for c in cks],
            "family": _family_text([c["args"] for c in cks]),
            "bn_recal": bn_recal, "val_acc_fp32_ema_bn": None if acc_ema_bn is None else round(acc_ema_bn, 4),
            "val_acc_fp32": round(acc32, 4), "val_acc_fp16": round(acc16, 4),
            "int8": clf.int8, "val_acc_shipped": round(acc_shipped, 4), "recall": recall,
            "unknown_score": score, "bytes": out.stat().st_size,
            "params": sum(p.numel() for m in models for p in m.parameters()),
            "train_seconds": round(sum(c["train_seconds"] for c in cks))}
    write_card(out.parent / "MODEL_CARD_fer.md", info, ck["args"])
    print(json.dumps(info))
    return info


def _recipe_notes(args: dict, info: dict) -> str:
    """The card's sentences for the optional parts of the recipe: distillation, SAM, BN re-estimation."""
    notes = []
    if args.get("teachers"):
        notes.append(f"Knowledge distillation: the loss mixes {1 - args['kd_weight']:.0%} label cross-entropy with "
                     f"{args['kd_weight']:.0%} KL divergence (temperature {args['kd_temp']:g}) to the mean logits of "
                     f"the finished runs {args['teachers']} on the same augmented batch"
                     f"{' (features averaged with its mirror)' if args.get('teacher_flip') else ''}.")
    if args.get("sam"):
        notes.append(f"Sharpness-aware minimization (radius {args['sam']:g}) in this run's steps: each step takes "
                     f"the gradient at the worst point of an L2 ball around the weights (twice the CPU per step).")
    if info.get("bn_recal"):
        notes.append(f"At export (`--bn-recal {info['bn_recal']}`) the BatchNorm statistics were re-estimated on "
                     f"{info['bn_recal']:,} clean training faces and their mirrors (the EMA holds statistics of "
                     f"augmented batches): float32 val accuracy {info['val_acc_fp32_ema_bn']:.2%} before, "
                     f"{info['val_acc_fp32']:.2%} after.")
    return "".join(" " + n for n in notes)


def _branch_checkpoint(spec: str) -> Path:
    """--branch-from value -> checkpoint: a path to a .pt file, or a run name (its last.pt)."""
    return Path(spec) if spec.endswith(".pt") else CACHE / spec / "last.pt"


def _schedule_text(args: dict) -> str:
    if args.get("schedule", "cosine") != "wsd":
        return f"cosine over {args['epochs']} epochs"
    branch = (f"; decayed as a branch of run `{_branch_checkpoint(args['branch_from']).parent.name}`"
              if args.get("branch_from") else "")
    return (f"constant learning rate, then cosine decay over the last {args['decay_epochs']:g} of "
            f"{args['epochs']} epochs (warmup-stable-decay{branch})")


_ARCH_NAMES = {"vgg": "VGG-style", "res": "residual"}


def _family_text(member_args: list[dict]) -> str:
    """The card's architecture phrase: one family and width, or the mix the members make."""
    kinds = sorted({(_ARCH_NAMES[_arch(a)], a["width"]) for a in member_args})
    return "; ".join(f"{name}, BN, width {width}" for name, width in kinds)


def _optimizer_text(args: dict) -> str:
    if _opt(args) == "sgd":
        return f"SGD with Nesterov momentum 0.9 (lr {args['lr']:g}, L2 weight decay {args['wd']:g})"
    return f"AdamW (lr {args['lr']:g}, wd {args['wd']:g})"


def _member_recipe(args: dict, epoch: int) -> str:
    """One member's training in a line: width, seed, schedule, precision, and where in it the kept epoch lies."""
    phase = ""
    if args.get("schedule", "cosine") == "wsd" and epoch <= args["epochs"] - args["decay_epochs"]:
        # the best val epoch can precede the decay (the decay overfits); say so, the schedule alone would mislead
        phase = f"; the kept epoch {epoch} lies in the constant-rate phase, before the decay"
    return (f"{_ARCH_NAMES[_arch(args)]}, width {args['width']}, seed {args['seed']}, {_optimizer_text(args)}, "
            f"{_schedule_text(args)}"
            f"{', bfloat16 autocast' if args.get('bf16') else ''}{phase}")


LOO_ORDER = ("msp", "maxlogit", "energy", "feature", "mahalanobis", "knn", "flipcam")


def _loo_table(loo: dict[str, dict]) -> tuple[list[str], list[str]]:
    """Rows 'AUROC / FPR95' per left-out class and score, plus the mean; the scores every fold has."""
    if not loo:
        return [], list(SCORES)
    common = set.intersection(*(set(r["auroc"]) for r in loo.values()))
    scores = [k for k in LOO_ORDER if k in common]
    has_fpr = all("fpr95" in r for r in loo.values())

    def cell(a: float, f: float | None) -> str:
        return f"{a:.3f}" + (f" / {f:.2f}" if f is not None else "")
    lines = [f"| {r['left_out']} | {r['epoch']} | {r['closed_set_val_acc']:.1%} | {r['n_known']} / {r['n_unknown']} | "
             + " | ".join(cell(r["auroc"][k], r["fpr95"][k] if has_fpr else None) for k in scores) + " |"
             for _, r in sorted(loo.items())]
    if len(loo) > 1:
        lines.append(f"| **mean of {len(loo)}** | | | | " + " | ".join(
            cell(float(np.mean([r["auroc"][k] for r in loo.values()])),
                 float(np.mean([r["fpr95"][k] for r in loo.values()])) if has_fpr else None) for k in scores) + " |")
    return lines, scores


def write_card(path: Path, info: dict, args: dict) -> None:
    """The model card is generated from measured numbers so it cannot drift from the file."""
    loo = _openset_results()
    loo_lines, scores = _loo_table(loo)
    recall = ", ".join(f"{c} {v:.1%}" for c, v in info["recall"].items())
    path.write_text(f"""# Model card: FER2013 expression classifier (`{Path(info['exported']).name}`)

**What:** 7-way facial-expression classifier (angry, disgust, fear, happy, sad, surprise,
neutral) on 48x48 grayscale aligned faces. {'One network' if len(info['runs']) == 1 else f"An ensemble of {len(info['runs'])} networks"} `core.fer.model.FerNet`
({info['family']}){'' if len(info['runs']) == 1 else ' whose logits are averaged'}, {info['params']:,} parameters in all,
weights stored float16 plus an int8 copy of the convolutions ({info['bytes'] / 1e6:.2f} MB in all);
predictions run the int8 convolutions in ONNX Runtime (core/fer/quantize.py), Grad-CAM the float32 network.
Test-time mirror averaging: {'on' if info['flip'] else 'off'} (the shipped configuration; accuracy below is measured in it).

**Data:** FER2013 `Training` split (28,709 images, ../shared/fer2013/train.npz) for training;
`PublicTest` (3,589, val.npz) for model selection and the numbers below. No other data. FER2013
has no explicit licence (research use); the model inherits that. Because the same split chose the
epochs and the ensemble members, its figures below lean optimistic; by how much cannot be
measured here (FER2013's `PrivateTest` split is not in ../shared).

**Training:** `scripts/train_fer.py` - {_optimizer_text(args) + ', ' if len(info['runs']) == 1 else ''}1-epoch warm-up then
{_schedule_text(args) if len(info['runs']) == 1 else 'the optimizer and schedule listed for each member below'}, batch {args['batch']}, label smoothing {args['smoothing']},
EMA of weights ({args['ema']}), augmentation: random rotation +-12 deg, scale +-12%, shift +-10%,
horizontal flip, brightness/contrast jitter, random erasing.{_recipe_notes(args, info)} CPU only (torch threads at the
last resume: {args['threads']}; channels-last convolutions) on a 2-core machine shared with other jobs.

**This file:** members (training runs in .cache/fer, each at its best val epoch):
{chr(10).join(f"- `{r}`: epoch {e}, {a:.1%} alone (flip-averaged); {rec}" for r, e, a, rec in zip(info['runs'], info['member_epochs'], info['member_val_acc'], info['member_recipes']))}

{info['train_seconds']} s of training wall time in all.

| measured on FER2013 val (3,589), shipped configuration | value |
|---|---|
| accuracy, float32 weights | {info['val_acc_fp32']:.1%} |
| accuracy, float16 weights | {info['val_acc_fp16']:.1%} |
| accuracy, as shipped ({'int8 features, float32 head' if info['int8'] else 'float16 weights'}) | {info['val_acc_shipped']:.1%} |
| target | 72% ({'reached' if info['val_acc_shipped'] >= 0.72 else 'not reached'}) |

Per-class recall (as shipped): {recall}.

**Open-set "unknown expression" score** (after Zhang et al. 2024, Open-Set FER): shipped
score `{info['unknown_score']}`, mapped to 0..1 as the share of known-class val faces that score
lower. Measured by training with one class left out and scoring val faces of that class
against the other six (`scripts/fer_openset.py`; AUROC, higher is better, 0.5 = chance; FPR95 is
the share of unknown faces accepted when 95% of known faces are, lower is better; target: mean
AUROC >= 0.80 for an inductive score):

| left out | epochs | closed-set val acc | known / unknown | {' | '.join(scores)} |
|---|---|---|---|{'---|' * len(scores)}
{chr(10).join(loo_lines) if loo_lines else '| (no leave-one-out run measured yet) | | | | |'}

The leave-one-out networks are short runs (width 16, 3-4 epochs), one per left-out class; the
shipped model's own AUROC on an unseen class cannot be measured (it has seen all seven). See
docs/FER.md ("Open set") for every score, the transductive pool score and what was tried.

**Limits:** FER2013 is posed/web images, mostly frontal, skewed to some demographics; labels are
noisy (human accuracy about 65%). Disgust is rare (436 training images) and poorly recognised.
Expressions are not emotions: do not use the output to infer what someone feels.
""")


def eval_openset(run_dir: Path) -> dict:
    """Every inductive unknown score's AUROC and FPR95 for a run trained with --exclude: val faces
    of the left-out class against the seen classes (scripts/fer_openset.py, without the
    transductive score), recorded beside the model for the card."""
    import fer_openset
    ck = torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True)
    if ck["args"].get("exclude_idx") is None:
        raise SystemExit(f"{run_dir} was not trained with --exclude")
    res = fer_openset.fold_scores(run_dir.name, 0, [])
    results = _openset_results()
    results[res["left_out"]] = res
    tmp = OPENSET_RESULTS.with_name(OPENSET_RESULTS.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    tmp.replace(OPENSET_RESULTS)
    print(json.dumps(res))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="main", help="run name: checkpoints in .cache/fer/<run>/")
    ap.add_argument("--train", default=None, help="train.npz (default ../shared/fer2013/train.npz)")
    ap.add_argument("--val", default=None, help="val.npz (default ../shared/fer2013/val.npz)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--wd", type=float, default=0.05, help="weight decay (decoupled for adamw, L2 for sgd)")
    ap.add_argument("--opt", default="adamw", choices=("adamw", "sgd"),
                    help="optimizer: AdamW, or SGD with Nesterov momentum 0.9 (e.g. --lr 0.05 --wd 5e-4)")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--arch", default="vgg", choices=ARCHS, help="network family (core.fer.model.FerNet)")
    ap.add_argument("--smoothing", type=float, default=0.1)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--exclude", default=None, help="leave this class out (open-set evaluation run)")
    ap.add_argument("--oe-mix", type=float, default=0.0, metavar="W",
                    help="outlier exposure with cross-class mixes (open-set runs): half a batch of blends of two "
                         "faces of different known classes, pushed towards the uniform prediction, weight W")
    ap.add_argument("--teachers", default=None,
                    help="comma-separated finished runs whose averaged predictions on each augmented "
                         "batch are distilled into this network (knowledge distillation)")
    ap.add_argument("--kd-weight", type=float, default=0.7, help="share of the distillation term in the loss")
    ap.add_argument("--kd-temp", type=float, default=2.0, help="softmax temperature of the distillation term")
    ap.add_argument("--teacher-flip", action="store_true",
                    help="teachers predict from features averaged over the view and its mirror (as they ship)")
    ap.add_argument("--schedule", default="cosine", choices=("cosine", "wsd"),
                    help="cosine over the whole run, or warmup-stable-decay (constant, then cosine over "
                         "the last --decay-epochs): extend a wsd run by resuming it with a larger --epochs")
    ap.add_argument("--decay-epochs", type=float, default=8, help="length of the wsd decay phase")
    ap.add_argument("--branch-from", default=None,
                    help="start this new run from another run's last.pt (weights, optimizer, EMA, step): "
                         "e.g. decay a copy of a long wsd run to measure it while the run goes on")
    ap.add_argument("--snapshot-every", type=int, default=0,
                    help="also keep epoch_<n>.pt every this many epochs (branch points); 0 = never")
    ap.add_argument("--sam", type=float, default=0.0, metavar="RHO",
                    help="sharpness-aware minimization with this radius (0: off; doubles the step cost)")
    ap.add_argument("--bf16", action="store_true",
                    help="bfloat16 autocast for the training forward/backward (weights, optimizer and EMA stay "
                         "float32): ~2.3x faster on CPUs with AMX/AVX512-BF16, measured 0.53 -> 0.23 s a step")
    ap.add_argument("--init-from", default=None, metavar="MODEL",
                    help="start a new run from the weights of an exported model file (its first member) or a "
                         "checkpoint; optimizer state and step start fresh (unlike --branch-from)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ckpt-every", type=int, default=50, help="steps between resumable checkpoints")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--export", action="store_true", help="export best.pt of --run (or --members) and exit")
    ap.add_argument("--members", default=None, help="comma-separated runs to export as one ensemble")
    ap.add_argument("--no-flip", action="store_true", help="export for single-view inference (no mirror averaging)")
    ap.add_argument("--out", default=None, help="export path (default resources/models/fer_vgg.pt)")
    ap.add_argument("--bn-recal", type=int, default=0, metavar="N",
                    help="export: re-estimate BatchNorm statistics on N clean training faces first")
    ap.add_argument("--unknown-score", default="energy", choices=("msp", "maxlogit", "energy", "feature"),
                    help="open-set score shipped with --export")
    ap.add_argument("--eval-openset", action="store_true",
                    help="measure unknown-score AUROC of a run trained with --exclude, and exit")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run_dir = CACHE / args.run
    if args.export:
        export(args.members.split(",") if args.members else [args.run],
               Path(args.out) if args.out else MODELS_DIR / "fer_vgg.pt", args.unknown_score, not args.no_flip,
               args.bn_recal)
        return
    if args.eval_openset:
        eval_openset(run_dir)
        return

    args.train = str(shared_path("fer2013/train.npz", args.train, "FER2013 train split"))
    args.val = str(shared_path("fer2013/val.npz", args.val, "FER2013 val split"))
    args.exclude_idx = FER_CLASSES.index(args.exclude) if args.exclude else None
    classes = [c for c in FER_CLASSES if c != args.exclude]
    xt, yt = load_npz(Path(args.train), args.exclude_idx)
    xv, yv = load_npz(Path(args.val), args.exclude_idx)
    xt = normalize(xt)

    torch.manual_seed(args.seed)
    model = FerNet(num_classes=len(classes), width=args.width, arch=args.arch)
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
    no_decay = [p for n, p in model.named_parameters() if p.dim() == 1]
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    groups = [{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}]
    opt = (torch.optim.SGD(groups, lr=args.lr, momentum=0.9, nesterov=True) if args.opt == "sgd"
           else torch.optim.AdamW(groups, lr=args.lr))
    steps_per_epoch = len(xt) // args.batch
    total = steps_per_epoch * args.epochs
    step, best, train_seconds = 0, 0.0, 0.0
    run_dir.mkdir(parents=True, exist_ok=True)
    decay = round(args.decay_epochs * steps_per_epoch) if args.schedule == "wsd" else None
    start_ck = run_dir / "last.pt"
    if not start_ck.exists() and args.branch_from:
        start_ck = _branch_checkpoint(args.branch_from)
        if not start_ck.exists():
            raise SystemExit(f"--branch-from: {start_ck} not found")
    if start_ck.exists():
        ck = torch.load(start_ck, map_location="cpu", weights_only=True)
        ck_arch, ck_opt = _arch(ck["args"]), _opt(ck["args"])
        if (ck_arch, ck["args"]["width"], ck["num_classes"], ck_opt) != (args.arch, args.width, len(classes), args.opt):
            raise SystemExit(f"{start_ck} has {ck_arch} width {ck['args']['width']} / {ck['num_classes']} classes / "
                             f"{ck_opt}; this run asks for {args.arch} width {args.width} / {len(classes)} classes / "
                             f"{args.opt}")
        model.load_state_dict(ck["model"]); opt.load_state_dict(ck["opt"]); ema = ck["ema"]
        step, best, train_seconds = ck["step"], ck["best"], ck["train_seconds"]
        if start_ck.parent != run_dir:  # a branch measures its own best; training time stays cumulative
            best = 0.0
            print(f"branched {run_dir} from {start_ck} at step {step}", flush=True)
        print(f"resumed {run_dir} at step {step}/{total} (best val {best:.4f})", flush=True)
    elif args.init_from:
        model.load_state_dict(initial_weights(args.init_from, args.width, len(classes), args.arch))
        ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
        print(f"initialised {run_dir} from the weights in {args.init_from}", flush=True)
    # NHWC convolutions: ~1.8x faster forward on this CPU (see core/fer/classifier.py)
    model = model.to(memory_format=torch.channels_last)

    def save(name: str, **extra) -> None:
        blob = {"model": model.state_dict(), "opt": opt.state_dict(), "ema": ema, "step": step,
                "best": best, "train_seconds": train_seconds, "args": vars(args),
                "num_classes": len(classes), "classes": classes, **extra}
        tmp = run_dir / (name + ".tmp")
        torch.save(blob, tmp)
        tmp.replace(run_dir / name)  # atomic: a kill mid-write never corrupts the checkpoint

    crit = torch.nn.CrossEntropyLoss(label_smoothing=args.smoothing)
    teachers = [_fuse_bn(_best(r)[0]).to(memory_format=torch.channels_last)
                for r in args.teachers.split(",")] if args.teachers else []
    if teachers and teachers[0].head.out_features != len(classes):
        raise SystemExit("teachers must be trained on the same classes as the student")

    def loss_fn(logits: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """Label cross-entropy, mixed with distillation towards the teachers' mean logits on the
        same augmented view (the teacher sees exactly what the student sees)."""
        ce = crit(logits, yb)
        if not teachers:
            return ce
        with torch.no_grad():
            # with --teacher-flip the teachers predict as they ship: features averaged with the mirror's
            t_logits = ensemble_forward(teachers, xb, args.teacher_flip)[0]
        tmp = args.kd_temp
        kd = F.kl_div(F.log_softmax(logits / tmp, 1), F.log_softmax(t_logits / tmp, 1),
                      log_target=True, reduction="batchmean") * tmp * tmp
        return (1 - args.kd_weight) * ce + args.kd_weight * kd
    t_mark = time.time()
    while step < total:
        epoch, k = divmod(step, steps_per_epoch)
        perm = torch.randperm(len(xt), generator=torch.Generator().manual_seed(args.seed * 1000 + epoch))
        gen = torch.Generator().manual_seed(args.seed * 7919 + step)
        model.train()
        run_loss, run_n = 0.0, 0
        for k in range(k, steps_per_epoch):
            idx = perm[k * args.batch:(k + 1) * args.batch]
            xb, yb = augment(xt[idx], gen).contiguous(memory_format=torch.channels_last), yt[idx]
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total, steps_per_epoch, args.lr, decay)
            xo = mixed_outliers(xb, yb, gen) if args.oe_mix else None

            def step_loss() -> torch.Tensor:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                    logits = model(xb if xo is None else torch.cat([xb, xo]))
                logits = logits.float()
                loss = loss_fn(logits[:len(xb)], xb, yb)
                if xo is not None:  # outliers: cross-entropy to the uniform distribution
                    loss = loss - args.oe_mix * F.log_softmax(logits[len(xb):], 1).mean()
                return loss
            loss = step_loss()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if args.sam:
                sam_ascent(model, step_loss, args.sam)
            opt.step()
            with torch.no_grad():
                d = min(args.ema, (1 + step) / (10 + step))  # EMA warms up quickly early on
                for name, v in model.state_dict().items():
                    if v.is_floating_point():
                        ema[name].mul_(d).add_(v.detach(), alpha=1 - d)
                    else:
                        ema[name].copy_(v)
            step += 1
            run_loss += float(loss.detach()) * len(idx); run_n += len(idx)
            if step % args.ckpt_every == 0:
                now = time.time(); train_seconds += now - t_mark; t_mark = now
                save("last.pt")
                print(f"  step {step}/{total} loss {run_loss / run_n:.4f} {train_seconds:.0f}s", flush=True)
        now = time.time(); train_seconds += now - t_mark; t_mark = now
        ema_model = FerNet(num_classes=len(classes), width=args.width, arch=args.arch)
        ema_model.load_state_dict(ema)
        acc, _ = evaluate(ema_model, xv, yv)
        improved = acc > best
        best = max(best, acc)
        rec = {"epoch": epoch + 1, "step": step, "lr": round(opt.param_groups[0]["lr"], 6),
               "val_acc": round(acc, 4), "best": round(best, 4),
               "train_loss": round(run_loss / max(run_n, 1), 4), "train_seconds": round(train_seconds)}
        print(json.dumps(rec), flush=True)
        with open(run_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        save("last.pt")
        if improved:
            save("best.pt", epoch=epoch + 1, val_acc=acc)
        if args.snapshot_every and (epoch + 1) % args.snapshot_every == 0:
            save(f"epoch_{epoch + 1}.pt")
        t_mark = time.time()
    print(json.dumps({"done": True, "best_val_acc": best, "train_seconds": round(train_seconds)}), flush=True)


if __name__ == "__main__":
    main()
