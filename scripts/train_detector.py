#!/usr/bin/env python3
"""Train the one-stage face + expression detector (VSS neck) and its CSP-neck ablation.

Both networks see the same batches in one process (a step of one, then a step of the other),
so the ablation differs only in the neck. Scenes are composed on the fly (core.fer.detdata):
FER2013 train faces and avatar renders (a `synth-fer` folder) pasted into faces68_train photos
whose faces are painted out. Learning rate follows a cosine over a wall-clock budget, so the run
ends on time on a busy machine; checkpoints every few minutes under --work, and a rerun resumes.

  python scripts/train_detector.py --synth .cache/detector/synth_train --minutes 70
  python scripts/train_detector.py --make-set .cache/detector/heldout --synth .cache/detector/synth_val
  python scripts/train_detector.py --calibrate-two-stage --synth .cache/detector/synth_train
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.fer.detdata import (FacePool, compose, load_backgrounds, load_face_photos,  # noqa: E402
                              mosaic, write_detection_set)
from core.fer.detector import (DEFAULT_CSP, DEFAULT_VSS, INPUT_H, INPUT_W, FaceDetNet,  # noqa: E402
                               detection_loss, save_detector)
from core.paths import SHARED_DIR  # noqa: E402

WORK = Path(".cache/detector")
BATCH = 16
AVATAR_SHARE = 0.35     # of the faces pasted, when an avatar pool is given
PHOTO_SHARE = 0.25      # of the scenes: a real photo's own face (box only, no expression label)


def mediapipe_faces():
    """find_faces for load_backgrounds: every face MediaPipe finds, as a generous box."""
    from core.tracking import FaceTracker
    import hashlib
    tracker = FaceTracker(num_faces=10, min_detection=0.3, min_presence=0.3)
    seen: dict[str, list] = {}   # backgrounds and photos are the same pictures: detect once

    def find(bgr: np.ndarray) -> list:
        key = hashlib.sha1(bgr.tobytes()).hexdigest()
        if key not in seen:
            seen[key] = [(x - 0.25 * w, y - 0.5 * h, x + 1.25 * w, y + 1.2 * h)
                         for x, y, w, h in (f.box for f in tracker.detect(bgr))]
        return seen[key]
    return find


_FINDER = None


def _finder():
    global _FINDER
    if _FINDER is None:
        _FINDER = mediapipe_faces()
    return _FINDER


def backgrounds(split: str, log) -> list[np.ndarray]:
    """Cached grey backgrounds: 'train' from faces68_train, 'val' from faces68."""
    cache = WORK / f"backgrounds_{split}.npz"
    if cache.exists():
        with np.load(cache) as d:
            return [d[k] for k in sorted(d.files)]
    folder = SHARED_DIR / ("faces68_train" if split == "train" else "faces68")
    t = time.perf_counter()
    bgs = load_backgrounds(folder, find_faces=_finder())
    WORK.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **{f"bg{i:04d}": b for i, b in enumerate(bgs)})
    log(f"{len(bgs)} {split} backgrounds from {folder} in {time.perf_counter() - t:.0f} s")
    return bgs


def face_photos(log) -> list:
    """Cached faces68_train photos with their annotated face (expression unknown)."""
    cache = WORK / "photos_train.npz"
    if cache.exists():
        with np.load(cache) as d:
            return [(d[f"img{i:04d}"], tuple(d["boxes"][i])) for i in range(len(d["boxes"]))]
    t = time.perf_counter()
    photos = load_face_photos(SHARED_DIR / "faces68_train", find_faces=_finder())
    np.savez(cache, boxes=np.array([b for _, b in photos], np.float32),
             **{f"img{i:04d}": g for i, (g, _) in enumerate(photos)})
    log(f"{len(photos)} face photos in {time.perf_counter() - t:.0f} s")
    return photos


def pools(fer_npz: Path, synth: Path | None, log) -> list[tuple[FacePool, float]]:
    out = [(FacePool.from_fer(fer_npz), 1.0 - AVATAR_SHARE if synth else 1.0)]
    if synth:
        av = FacePool.from_synth(synth)
        if len(av):
            out.append((av, AVATAR_SHARE))
        log(f"avatar pool {synth}: {len(av)} kept renders, per class {[len(c) for c in av.by_class()]}")
    log(f"FER pool {fer_npz}: {len(out[0][0])} faces")
    return out


def batch(rng, bgs, face_pools, photos=None, n: int = BATCH, recipe: dict | None = None):
    """n scenes at the network's input size -> (x, boxes, soft). `recipe` (phase 2) may set
    photo_share, faces_per_scene and teacher targets: `teacher` (FER pool index -> (7,) class
    distribution) and `kd` (its share in the target, the label's is 1 - kd); avatar faces get
    the label smoothed by 0.1. soft is None without a teacher."""
    recipe = recipe or {}
    imgs, boxes, softs = [], [], []
    s = INPUT_W / 640
    teacher, kd = recipe.get("teacher"), recipe.get("kd", 0.0)
    for _ in range(n):
        picked: list = []
        if rng.random() < recipe.get("mosaic", 0.0):
            img, b = mosaic(rng, bgs, face_pools, picked)
        else:
            img, b, _ = compose(rng, bgs, face_pools, photos, recipe.get("photo_share", PHOTO_SHARE),
                                recipe.get("faces_per_scene"), picked)
        soft = np.zeros((len(b), 7), np.float32)
        for j, (cls, pk) in enumerate(zip(b[:, 0].astype(int), picked)):
            if cls < 0:
                continue
            soft[j] = 0.1 / 7
            soft[j, cls] += 0.9
            if teacher is not None and pk is not None and pk[0].source == "fer2013":
                soft[j] = (1 - kd) * np.eye(7, dtype=np.float32)[cls] + kd * teacher[pk[1]]
        small = cv2.resize(img, (INPUT_W, INPUT_H), interpolation=cv2.INTER_AREA)
        b = b.copy()
        b[:, 1:] *= s
        if rng.random() < 0.15:     # letterboxed frames (square clips): flat bars at the sides
            bar = int(rng.integers(10, 40))
            small[:, :bar] = small[:, -bar:] = 128
            keep = (b[:, 1] >= bar) & (b[:, 3] <= INPUT_W - bar)
            b, soft = b[keep], soft[keep]
        imgs.append(small)
        boxes.append(b)
        softs.append(soft)
    x = torch.from_numpy(np.stack(imgs)).float().div_(255)[:, None]
    return x, boxes, (softs if teacher is not None else None)


def teacher_targets(fer_pool: FacePool, temperature: float, log) -> np.ndarray:
    """The shipped two-stage classifier's class distribution (at `temperature`) for every FER
    pool face, in pool order; its logits on the FER2013 train file are cached."""
    cache = WORK / "teacher_fer_train_logits.npy"
    if not cache.exists():
        from core.fer.classifier import ExpressionClassifier
        clf = ExpressionClassifier(threads=1)
        with np.load(SHARED_DIR / "fer2013" / "train.npz") as d:
            images = d["images"]
        logits = np.concatenate([clf.predict(images[i:i + 512]).logits for i in range(0, len(images), 512)])
        np.save(cache, logits.astype(np.float32))
    logits = torch.from_numpy(np.load(cache))[torch.as_tensor(fer_pool.indices)]
    probs = torch.softmax(logits / temperature, 1).numpy()
    agree = float((probs.argmax(1) == np.array(fer_pool.labels)).mean())
    log(f"teacher: {len(probs)} FER faces, agrees with the label on {agree:.1%}, T {temperature}")
    return probs


def train(args, log) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    bgs = backgrounds("train", log)
    face_pools = pools(Path(args.fer), Path(args.synth) if args.synth else None, log)
    photos = face_photos(log)
    recipe = {}
    if args.faces_per_scene:
        recipe["faces_per_scene"] = [int(v) for v in args.faces_per_scene.split(",")]
    if args.mosaic:
        recipe["mosaic"] = args.mosaic
    if args.photo_share is not None:
        recipe["photo_share"] = args.photo_share
    if args.kd > 0:
        recipe["teacher"] = teacher_targets(face_pools[0][0], args.kd_temp, log)
        recipe["kd"] = args.kd
    nets = {k: FaceDetNet(k) for k in ("vss", "csp")}
    def groups(net):   # the backbone may learn slower (--backbone-lr-scale: keep what pretraining taught it)
        body = [p for n, p in net.named_parameters() if n.split(".")[0] in BACKBONE]
        rest = [p for n, p in net.named_parameters() if n.split(".")[0] not in BACKBONE]
        return [{"params": body, "scale": args.backbone_lr_scale}, {"params": rest, "scale": 1.0}]
    opts = {k: torch.optim.AdamW(groups(n), lr=args.lr, weight_decay=5e-4) for k, n in nets.items()}
    ckpt = WORK / (f"train_ckpt_{args.run}.pt" if args.run else "train_ckpt.pt")
    state = {"elapsed": 0.0, "step": 0, "seconds": {"vss": 0.0, "csp": 0.0}}
    if not ckpt.exists() and args.init_from:   # a new phase from an earlier run's weights (fresh optimizer)
        blob = torch.load(args.init_from, map_location="cpu", weights_only=True)
        for k in nets:
            nets[k].load_state_dict(blob["nets"][k])
        log(f"initialised both networks from {args.init_from} (step {blob['state']['step']})")
    if not ckpt.exists() and args.backbone:   # the same pretrained backbone for both
        bb = torch.load(args.backbone, map_location="cpu", weights_only=True)
        for k in nets:
            missing = nets[k].load_state_dict(bb, strict=False)
            assert not missing.unexpected_keys
        log(f"backbone of both networks from {args.backbone} ({len(bb)} tensors)")
    if ckpt.exists():
        blob = torch.load(ckpt, map_location="cpu", weights_only=True)
        for k in nets:
            nets[k].load_state_dict(blob["nets"][k])
            opts[k].load_state_dict(blob["opts"][k])
        state = blob["state"]
        log(f"resumed at step {state['step']}, {state['elapsed'] / 60:.1f} min")
    rng = np.random.default_rng(1000 + state["step"])
    budget = args.minutes * 60
    if args.until:   # a clock time (UTC, HH:MM today): the budget is whatever is left until then
        import datetime as dt
        now = dt.datetime.now(dt.timezone.utc)
        hh, mm = (int(v) for v in args.until.split(":"))
        end = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
        budget = state["elapsed"] + max(60.0, (end - now).total_seconds())
    log(f"training budget {budget / 60:.1f} min (both networks)")
    t_start, last_ckpt = time.perf_counter() - state["elapsed"], time.perf_counter()
    running = {k: [] for k in nets}
    while True:
        elapsed = time.perf_counter() - t_start
        if elapsed >= budget:
            break
        frac = elapsed / budget
        lr = args.lr * (min(1.0, (state["step"] + 1) / args.warmup) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac))))
        x, boxes, soft = batch(rng, bgs, face_pools, photos, recipe=recipe)
        for k, net in nets.items():
            t = time.perf_counter()
            net.train()
            for g in opts[k].param_groups:
                g["lr"] = lr * g.get("scale", 1.0)
            loss, info = detection_loss(net(x), boxes, soft, args.cls_weight)
            opts[k].zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
            if not (torch.isfinite(loss) and torch.isfinite(norm)):   # skip the step, keep the weights
                state.setdefault("skipped", {}).setdefault(k, 0)
                state["skipped"][k] += 1
                log(f"{k}: non-finite loss or gradient at step {state['step']}, step skipped")
                continue
            opts[k].step()
            state["seconds"][k] += time.perf_counter() - t
            running[k].append([loss.item(), info["box"], info["obj"], info["cls"]])
        state["step"] += 1
        if state["step"] % 50 == 0:
            msg = " | ".join(f"{k} loss {np.mean(v, 0)[0]:.3f} (box {np.mean(v, 0)[1]:.3f} obj {np.mean(v, 0)[2]:.3f} "
                             f"cls {np.mean(v, 0)[3]:.3f}) {state['seconds'][k] / state['step']:.2f} s/step"
                             for k, v in running.items())
            log(f"step {state['step']} {elapsed / 60:.1f} min lr {lr:.2e} | {msg}")
            running = {k: [] for k in nets}
        if time.perf_counter() - last_ckpt > 180:
            state["elapsed"] = time.perf_counter() - t_start
            _save_ckpt(ckpt, nets, opts, state)
            last_ckpt = time.perf_counter()
    state["elapsed"] = time.perf_counter() - t_start
    _save_ckpt(ckpt, nets, opts, state)
    out = Path(args.out_dir) if args.out_dir else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    for k, path in (("vss", out / DEFAULT_VSS.name if out else DEFAULT_VSS),
                    ("csp", out / DEFAULT_CSP.name if out else DEFAULT_CSP)):
        meta = {"steps": state["step"], "batch": BATCH, "train_minutes": round(state["seconds"][k] / 60, 1),
                "wall_minutes_both": round(state["elapsed"] / 60, 1), "input": [INPUT_W, INPUT_H],
                "data": "FER2013 train faces + kept synth-fer avatar renders pasted into faces68_train photos "
                        "(faces painted out); a quarter of the scenes a faces68_train photo's own face "
                        "(box only); composed on the fly (core.fer.detdata)",
                "synth": str(args.synth), "lr": args.lr, "init_from": args.init_from, "run": args.run,
                "backbone": args.backbone, "backbone_lr_scale": args.backbone_lr_scale,
                "recipe": {"kd": args.kd, "kd_temp": args.kd_temp, "cls_weight": args.cls_weight,
                           "faces_per_scene": args.faces_per_scene, "photo_share": args.photo_share,
                           "warmup": args.warmup, "mosaic": args.mosaic}}
        save_detector(nets[k].eval(), path, meta)
        log(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


BACKBONE = ("stem", "dark3", "dark4", "dark5")


def pretrain_backbone(args, log) -> None:
    """The detector's backbone (stem .. dark5) trained as an expression classifier on FER2013
    train crops: global pooling of its stride-16 and stride-32 maps -> linear, targets the shipped
    classifier's distribution mixed with the label (as in the detector's class loss). A 48x48
    crop costs a twentieth of a scene, so expressions are learned far faster than from scenes;
    both detectors then start from this same backbone (the ablation stays fair). Crops are
    resized to 28-96 px (the faces' range at the detector's input), flipped, contrast-jittered."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    pool = FacePool.from_fer(Path(args.fer))
    teacher = teacher_targets(pool, args.kd_temp, log)
    images = np.stack(pool.patches)
    labels = np.array(pool.labels)
    net = FaceDetNet("csp")
    body = torch.nn.ModuleDict({k: getattr(net, k) for k in BACKBONE})
    c4, c5 = net.width[3], net.width[4]
    fc = torch.nn.Linear(c4 + c5, 7)
    params = list(body.parameters()) + list(fc.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=5e-4)
    rng = np.random.default_rng(5)
    eye = np.eye(7, dtype=np.float32)
    t0, step, hist = time.perf_counter(), 0, []
    budget = args.pretrain_minutes * 60
    while (elapsed := time.perf_counter() - t0) < budget:
        lr = args.lr * min(1.0, (step + 1) / 100) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * elapsed / budget)))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = rng.integers(0, len(images), 128)
        size = int(rng.integers(28, 97))
        x = torch.from_numpy(images[idx]).float().div_(255)[:, None]
        flip = torch.from_numpy(rng.random(128) < 0.5)
        x[flip] = x[flip].flip(-1)
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        gain = torch.from_numpy(rng.uniform(0.7, 1.3, (128, 1, 1, 1)).astype(np.float32))
        x = ((x - x.mean((2, 3), keepdim=True)) * gain + x.mean((2, 3), keepdim=True)
             + torch.from_numpy(rng.uniform(-0.12, 0.12, (128, 1, 1, 1)).astype(np.float32))).clamp(0, 1)
        target = torch.from_numpy((1 - args.kd) * eye[labels[idx]] + args.kd * teacher[idx])
        h = body["stem"](x - 0.5)
        p4 = body["dark4"](body["dark3"](h))
        p5 = body["dark5"](p4)
        logits = fc(torch.cat([p4.mean((2, 3)), p5.mean((2, 3))], 1))
        loss = -(target * torch.log_softmax(logits, 1)).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hist.append([loss.item(), float((logits.argmax(1).numpy() == labels[idx]).mean())])
        step += 1
        if step % 100 == 0:
            m = np.mean(hist, 0)
            log(f"backbone step {step} {elapsed / 60:.1f} min lr {lr:.2e} loss {m[0]:.3f} train acc {m[1]:.3f}")
            hist = []
    torch.save({k: v for k, v in net.state_dict().items() if k.split(".")[0] in BACKBONE}, WORK / "backbone.pt")
    log(f"wrote {WORK / 'backbone.pt'} after {step} steps")


def _save_ckpt(path: Path, nets, opts, state) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"nets": {k: n.state_dict() for k, n in nets.items()},
                "opts": {k: o.state_dict() for k, o in opts.items()}, "state": state}, tmp)
    tmp.replace(path)


def make_set(args, log) -> None:
    bgs = backgrounds("val", log)
    face_pools = pools(SHARED_DIR / "fer2013" / "val.npz", Path(args.synth) if args.synth else None, log)
    note = ("held-out detection set: FER2013 val faces (real) and avatar renders (synthetic, core.synth, a "
            f"separate run: {args.synth}) pasted into the faces68 benchmark photos with their faces painted out; "
            "training used FER2013 train, other avatars and faces68_train")
    m = write_detection_set(Path(args.make_set), args.n, args.seed, bgs, face_pools, note)
    log(json.dumps(m))


def calibrate_two_stage(args, log) -> None:
    """How MediaPipe's landmark-extent box relates to our face box, on training scenes: the
    median centre shift and size ratio over matched faces (used by core.fer.detect_eval)."""
    from core.tracking import FaceTracker
    bgs = backgrounds("train", log)
    face_pools = pools(Path(args.fer), Path(args.synth) if args.synth else None, log)
    rng = np.random.default_rng(77)
    tracker = FaceTracker(num_faces=6)
    rows = []
    for _ in range(args.n):
        img, boxes, _ = compose(rng, bgs, face_pools)
        for f in tracker.detect(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)):
            x, y, w, h = f.box
            cx, cy = x + w / 2, y + h / 2
            for _, x1, y1, x2, y2 in boxes:
                if x1 < cx < x2 and y1 < cy < y2:
                    rows.append([((x1 + x2) / 2 - cx) / w, ((y1 + y2) / 2 - cy) / h, (x2 - x1) / w, (y2 - y1) / h])
    r = np.median(np.array(rows), 0)
    log(f"two-stage box calibration over {len(rows)} matched faces: dx {r[0]:.3f} dy {r[1]:.3f} "
        f"sw {r[2]:.3f} sh {r[3]:.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fer", default=str(SHARED_DIR / "fer2013" / "train.npz"))
    ap.add_argument("--synth", default=None, help="synth-fer output folder (avatar faces)")
    ap.add_argument("--minutes", type=float, default=70.0, help="wall-clock budget for both networks together")
    ap.add_argument("--until", default=None, help="stop at this UTC clock time (HH:MM) instead of --minutes")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=200, help="warm-up steps")
    ap.add_argument("--run", default="", help="name of this run (its checkpoint: .cache/detector/train_ckpt_RUN.pt)")
    ap.add_argument("--init-from", default=None, help="start both networks from this training checkpoint")
    ap.add_argument("--out-dir", default=None, help="write the two model files here, not resources/models")
    ap.add_argument("--kd", type=float, default=0.0,
                    help="share of the shipped classifier's distribution in the FER faces' class target")
    ap.add_argument("--kd-temp", type=float, default=2.0, help="teacher temperature")
    ap.add_argument("--pretrain-backbone", action="store_true",
                    help="train the backbone as an expression classifier on FER2013 crops (-> .cache/detector/backbone.pt)")
    ap.add_argument("--backbone-lr-scale", type=float, default=1.0, help="backbone learning rate / the rest's")
    ap.add_argument("--pretrain-minutes", type=float, default=15.0)
    ap.add_argument("--backbone", default=None, help="start both networks' backbones from this file")
    ap.add_argument("--mosaic", type=float, default=0.0,
                    help="share of face-heavy mosaic scenes (a grid of cells with one labelled face each)")
    ap.add_argument("--cls-weight", type=float, default=1.0, help="weight of the class loss")
    ap.add_argument("--faces-per-scene", default=None, help="choices for the number of pasted faces, e.g. 2,3,4")
    ap.add_argument("--photo-share", type=float, default=None, help="share of real-photo scenes (default 0.25)")
    ap.add_argument("--make-set", default=None, help="write the held-out detection set to this folder and stop")
    ap.add_argument("--calibrate-two-stage", action="store_true")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--seed", type=int, default=2027)
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    logf = open(WORK / "train.log", "a")

    def log(msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    if args.make_set:
        make_set(args, log)
    elif args.pretrain_backbone:
        pretrain_backbone(args, log)
    elif args.calibrate_two_stage:
        calibrate_two_stage(args, log)
    else:
        train(args, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
