"""AU-aligned FER training (issue 27, after Belharbi et al.): the same small classifier trained with
and without the attention-alignment term, per seed; val accuracy and CAM-COS of each, and of the
shipped classifier. Resumable (one checkpoint per epoch under .cache/fer_au/runs/).

    python scripts/train_fer_au.py --extract                  # MediaPipe landmarks of FER2013 (once)
    python scripts/train_fer_au.py --lam 9 --seed 0 [--epochs 8 --width 16]
    python scripts/train_fer_au.py --report                   # table of the finished runs, JSON

Landmarks: MediaPipe on each 48x48 face upscaled to 192, mapped to the 68 points
(core.fer.au.MP_TO_68); faces MediaPipe misses get no AU map (and no alignment term).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = ROOT / ".cache" / "fer_au"


def extract(split: str, fer_dir: Path) -> Path:
    """Landmarks (N, 68, 2) in crop pixels and a found mask for a FER2013 split, in chunks."""
    import cv2

    from core.fer.au import landmarks68_from_mediapipe
    from core.tracking import FaceTracker

    out = CACHE / f"{split}_landmarks.npz"
    if out.exists():
        return out
    images = np.load(fer_dir / f"{split}.npz")["images"]
    chunk = 2000
    with FaceTracker(num_faces=1, min_detection=0.3, min_presence=0.3) as tracker:
        for c0 in range(0, len(images), chunk):
            part = CACHE / f"{split}_{c0:05d}.npz"
            if part.exists():
                continue
            n = min(chunk, len(images) - c0)
            lm, found = np.zeros((n, 68, 2), np.float32), np.zeros(n, bool)
            for i in range(n):
                big = cv2.cvtColor(cv2.resize(images[c0 + i], (192, 192), interpolation=cv2.INTER_CUBIC),
                                   cv2.COLOR_GRAY2BGR)
                faces = tracker.detect(big)
                if faces:
                    found[i], lm[i] = True, landmarks68_from_mediapipe(faces[0].landmarks) / 4.0
            np.savez(part, lm68=lm, found=found)
            print(f"{split} {c0 + n}/{len(images)}: {found.mean():.0%} found", flush=True)
    parts = [np.load(CACHE / f"{split}_{c0:05d}.npz") for c0 in range(0, len(images), chunk)]
    np.savez(out, lm68=np.concatenate([p["lm68"] for p in parts]), found=np.concatenate([p["found"] for p in parts]))
    return out


def load_split(split: str, fer_dir: Path):
    from core.fer.au_align import au_maps
    d = np.load(fer_dir / f"{split}.npz")
    lm = np.load(CACHE / f"{split}_landmarks.npz")
    maps_path = CACHE / f"{split}_maps.npy"
    if maps_path.exists():
        maps = np.load(maps_path)
    else:
        maps = au_maps(lm["lm68"], d["labels"], lm["found"])
        np.save(maps_path, maps)
    return d["images"], d["labels"].astype(np.int64), maps


def augment(x, m, rng):
    """Same flip and shift for the faces and their maps; brightness/contrast for the faces."""
    import torch
    b = x.shape[0]
    flip = torch.from_numpy(rng.random(b) < 0.5)
    x[flip], m[flip] = x[flip].flip(-1), m[flip].flip(-1)
    pad = 4
    xp = torch.nn.functional.pad(x, (pad,) * 4, mode="replicate")
    mp = torch.nn.functional.pad(m, (pad,) * 4)
    dy, dx = rng.integers(0, 2 * pad + 1, 2)
    x = xp[..., dy:dy + 48, dx:dx + 48]
    m = mp[..., dy:dy + 48, dx:dx + 48]
    gain = torch.from_numpy(rng.uniform(0.8, 1.2, (b, 1, 1, 1)).astype(np.float32))
    bias = torch.from_numpy(rng.uniform(-0.2, 0.2, (b, 1, 1, 1)).astype(np.float32))
    return x * gain + bias, m


def train(args, fer_dir: Path) -> dict:
    import torch
    import torch.nn.functional as F

    from core.fer.au_align import alignment_loss, attention, cam_cos_per_class
    from core.fer.model import FerNet, normalize

    torch.set_num_threads(args.threads)
    name = f"w{args.width}_e{args.epochs}_lam{args.lam:g}_s{args.seed}"
    run = CACHE / "runs" / name
    run.mkdir(parents=True, exist_ok=True)
    xs, ys, ms = load_split("train", fer_dir)
    xv, yv, mv = load_split("val", fer_dir)
    torch.manual_seed(args.seed)
    model = FerNet(width=args.width)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    steps_per_epoch = len(xs) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=args.epochs * steps_per_epoch,
                                                pct_start=0.15)
    epoch, seconds = 0, 0.0
    ck = run / "ckpt.pt"
    if ck.exists():
        state = torch.load(ck, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        epoch, seconds = int(state["epoch"]), float(state["seconds"])
    deadline = _deadline(args.until)
    while epoch < args.epochs:
        if time.time() > deadline:
            print(f"{name}: stopping at the deadline after epoch {epoch}", flush=True)
            return {}
        t0 = time.time()
        rng = np.random.default_rng([args.seed, epoch])
        order = rng.permutation(len(xs))
        model.train()
        tot = align_tot = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * args.batch:(b + 1) * args.batch]
            x = normalize(torch.from_numpy(xs[idx]))
            m = torch.from_numpy(ms[idx]).float()[:, None] / 255.0
            x, m = augment(x, m, rng)
            logits, att = attention(model, x)
            loss = F.cross_entropy(logits, torch.from_numpy(ys[idx]), label_smoothing=0.1)
            align = alignment_loss(att, m[:, 0])
            total = loss + args.lam * align if args.lam > 0 else loss
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            sched.step()
            tot += loss.item()
            align_tot += align.item()
        epoch += 1
        seconds += time.time() - t0
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "epoch": epoch, "seconds": seconds}, ck)
        print(f"{name}: epoch {epoch}/{args.epochs} ce {tot / steps_per_epoch:.3f} "
              f"align {align_tot / steps_per_epoch:.3f} ({time.time() - t0:.0f} s)", flush=True)
    model.eval()
    with torch.inference_mode():
        pred = torch.cat([model(normalize(torch.from_numpy(xv[i:i + 512]))).argmax(1)
                          for i in range(0, len(xv), 512)]).numpy()
    res = {"run": name, "width": args.width, "epochs": args.epochs, "lam": args.lam, "seed": args.seed,
           "val_acc": float((pred == yv).mean()), "cam_cos": cam_cos_per_class(model, xv, yv, mv),
           "train_seconds": round(seconds)}
    (run / "result.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res), flush=True)
    return res


def shipped_cam_cos(fer_dir: Path) -> dict:
    """CAM-COS of the shipped classifier (Grad-CAM averaged over its members, as the app shows it)."""
    from core.fer import ExpressionClassifier
    from core.fer.au_align import cam_cos_per_class
    xv, yv, mv = load_split("val", fer_dir)
    return cam_cos_per_class(ExpressionClassifier().models, xv, yv, mv)


def report(fer_dir: Path) -> None:
    rows = [json.loads(p.read_text()) for p in sorted((CACHE / "runs").glob("*/result.json"))]
    ship = shipped_cam_cos(fer_dir)
    print(f"{'run':28s} {'val acc':>8s} {'CAM-COS':>8s}")
    for r in rows:
        print(f"{r['run']:28s} {r['val_acc']:8.2%} {r['cam_cos']['mean']:8.3f}")
    for lam in sorted({r["lam"] for r in rows}):
        sel = [r for r in rows if r["lam"] == lam]
        print(f"lambda {lam:g}: {len(sel)} seeds, val acc {np.mean([r['val_acc'] for r in sel]):.2%} "
              f"+- {np.std([r['val_acc'] for r in sel]):.2%}, CAM-COS {np.mean([r['cam_cos']['mean'] for r in sel]):.3f}")
    print(f"shipped classifier: CAM-COS {ship['mean']:.3f}")
    print(json.dumps({"runs": rows, "shipped_cam_cos": ship}))


def _deadline(until: str | None) -> float:
    if not until:
        return float("inf")
    hh, mm = map(int, until.split(":"))
    now = time.localtime()
    t = time.mktime(now[:3] + (hh, mm, 0) + now[6:])
    return t if t > time.time() else t + 86400


def main() -> int:
    from core.paths import shared_path
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fer", default=None, help="FER2013 folder (default ../shared/fer2013)")
    ap.add_argument("--extract", action="store_true")
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--lam", type=float, default=0.0, help="weight of the alignment term (Belharbi: 9)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--until", default=None, help="stop (resumably) after the epoch that ends past HH:MM")
    args = ap.parse_args()
    fer_dir = Path(args.fer) if args.fer else shared_path("fer2013")
    CACHE.mkdir(parents=True, exist_ok=True)
    if args.extract:
        for split in ("val", "train"):
            extract(split, fer_dir)
        return 0
    if args.report:
        report(fer_dir)
        return 0
    for split in ("val", "train"):
        if not (CACHE / f"{split}_landmarks.npz").exists():
            print(f"error: run --extract first ({split} landmarks missing)", file=sys.stderr)
            return 2
    train(args, fer_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
