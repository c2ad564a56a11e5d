"""Train the text-to-avatar diffusion models -> resources/models/generate.pt (+ its model card
figures come from `python main.py eval-generate`).

    nohup nice -n 10 python scripts/train_generate.py --steps 20000 > .cache/generate/train.log &

Steps: (1) the training faces (real fits + prior samples), measured; cached in
.cache/generate/dataset.npz; (2) captions from the measured z-scores, read back by the prompt
reader into conditions; (3) both stages trained together (v-prediction, cosine schedule,
condition dropout 15%), checkpointed to .cache/generate/ckpt.pt every 500 steps and resumed
from it; (4) float16 weights, the attribute scale and the baselines' data written.
One thread (the machine is shared).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.diffusion import cosine_schedule, diffusion_loss, drop_condition  # noqa: E402
from core.generate.attributes import SCALARS, AttributeScale  # noqa: E402
from core.generate.captions import CAPTION_VERSION, caption  # noqa: E402
from core.generate.model import COND_DIM, IDENTITY_DIM, Denoiser, encode_reading, state_half  # noqa: E402
from core.generate.reading import read_prompt  # noqa: E402
from core.head.settings import HAIR_STYLES  # noqa: E402
from core.paths import MODELS_DIR  # noqa: E402

CACHE = Path(".cache/generate")


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def dataset(n_prior: int, seed: int) -> dict[str, np.ndarray]:
    path = CACHE / f"dataset_{n_prior}_{seed}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as d:
            return {k: d[k] for k in d.files}
    from core.appearance import shared_model
    from core.facemodel.model import FaceModel
    from core.generate.data import build_dataset
    data = build_dataset(FaceModel.load(), shared_model(), ".cache/appearance/samples", n_prior, seed, log)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **data)
    os.replace(tmp, path)
    return data


def conditions(z: np.ndarray, styles: np.ndarray, per_face: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    path = CACHE / f"conds_{len(z)}_{per_face}_{seed}_v{CAPTION_VERSION}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as d:
            return d["cond"], d["face"], [str(c) for c in d["captions"]]
    rng = np.random.default_rng(seed + 1)
    conds, faces, caps = [], [], []
    for i in range(len(z)):
        for _ in range(per_face):
            c = caption(z[i], HAIR_STYLES[int(styles[i])], rng)
            conds.append(encode_reading(read_prompt(c)))
            faces.append(i)
            caps.append(c)
        if i % 500 == 0:
            log(f"captions {i}/{len(z)}: {caps[-1]!r}")
    out = np.stack(conds), np.array(faces), caps
    np.savez(path, cond=out[0], face=out[1], captions=np.array(caps))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prior", type=int, default=3000, help="prior samples added to the real faces")
    ap.add_argument("--captions", type=int, default=16, help="captions per face")
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--identity-drop", type=float, default=0.3, help="stage 2: identity dropout")
    ap.add_argument("--stage1-from", default=None, help="keep stage 1 from this model file and train stage 2 only")
    ap.add_argument("--baseline-captions", type=int, default=1500)
    ap.add_argument("--out", default=str(MODELS_DIR / "generate.pt"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    CACHE.mkdir(parents=True, exist_ok=True)
    t_start = time.time()

    data = dataset(args.prior, args.seed)
    scale = AttributeScale.fit(data["values"])
    z = scale.z(data["values"]).astype(np.float32)
    styles = np.argmax(data["extras"][:, :len(HAIR_STYLES)], 1)
    cond, face, caps = conditions(z, styles, args.captions, args.seed)
    log(f"{len(data['ict'])} faces ({int(data['real'].sum())} real), {len(cond)} captions")

    ict = torch.from_numpy(data["ict"])
    ex_mean = data["extras"].mean(0)
    ex_std = data["extras"].std(0) + 1e-3
    x2 = torch.from_numpy(np.concatenate([data["appearance"], (data["extras"] - ex_mean) / ex_std], 1)).float()
    cond_t = torch.from_numpy(cond)
    face_t = torch.from_numpy(face).long()
    sched = cosine_schedule(1000)
    net1 = Denoiser(IDENTITY_DIM, COND_DIM, args.width, args.depth)
    net2 = Denoiser(x2.shape[1], COND_DIM + IDENTITY_DIM, args.width, args.depth)
    opt = torch.optim.AdamW(list(net1.parameters()) + list(net2.parameters()), lr=1e-3, weight_decay=1e-4)
    step = 0
    ckpt = CACHE / "ckpt.pt"
    if ckpt.exists():
        # our own checkpoint; older ones held the learning rate as a numpy scalar
        with torch.serialization.safe_globals([np._core.multiarray.scalar, np.dtype, np.dtypes.Float64DType]):
            st = torch.load(ckpt, weights_only=True)
        if st["config"] == [args.width, args.depth, len(cond), args.identity_drop, CAPTION_VERSION, args.steps]:
            net1.load_state_dict(st["net1"])
            net2.load_state_dict(st["net2"])
            opt.load_state_dict(st["opt"])
            step = int(st["step"])
            log(f"resumed at step {step}")
    stage1_fixed = False
    if args.stage1_from:
        from core.generate.generator import load_model_file
        net1.load_state_dict(load_model_file(args.stage1_from)["net1"].state_dict())
        stage1_fixed = True
        log(f"stage 1 kept from {args.stage1_from}")
    g = torch.Generator().manual_seed(args.seed + step)
    null = torch.zeros(1, COND_DIM)
    ema1, ema2 = [Denoiser(**n.config) for n in (net1, net2)]
    ema1.load_state_dict(net1.state_dict())
    ema2.load_state_dict(net2.state_dict())
    losses = []
    while step < args.steps:
        lr = float(1e-3 * 0.5 * (1 + np.cos(np.pi * step / args.steps)))
        for grp in opt.param_groups:
            grp["lr"] = lr
        idx = torch.randint(0, len(cond_t), (args.batch,), generator=g)
        f = face_t[idx]
        c = drop_condition(cond_t[idx], null, 0.15, args.batch, g)
        l1 = (torch.zeros(()) if stage1_fixed
              else diffusion_loss(net1, sched, ict[f], c, prediction="v", generator=g))
        # stage 2: the identity is dropped on its own too (30%), so the text alone must explain the
        # appearance (the real faces' identity -> appearance pairs could otherwise be memorised)
        keep_id = (torch.rand(args.batch, generator=g) >= args.identity_drop).float()[:, None]
        c2 = torch.cat([c, ict[f] * keep_id], 1)
        l2 = diffusion_loss(net2, sched, x2[f], c2, prediction="v", generator=g)
        opt.zero_grad()
        (l1 + l2).backward()
        opt.step()
        with torch.no_grad():
            d = min(0.999, (1 + step) / (10 + step))
            for e, n in ((ema1, net1), (ema2, net2)):
                for pe, pn in zip(e.parameters(), n.parameters()):
                    pe.mul_(d).add_(pn, alpha=1 - d)
        losses.append((l1.item(), l2.item()))
        step += 1
        if step % 250 == 0:
            a = np.mean(losses[-250:], 0)
            log(f"step {step} loss identity {a[0]:.4f} appearance {a[1]:.4f} lr {lr:.2e}")
        if step % 500 == 0 or step == args.steps:
            tmp = ckpt.with_suffix(".tmp")
            torch.save({"net1": net1.state_dict(), "net2": net2.state_dict(), "opt": opt.state_dict(),
                        "step": step, "config": [args.width, args.depth, len(cond), args.identity_drop,
                                                 CAPTION_VERSION, args.steps]}, tmp)
            os.replace(tmp, ckpt)
            # the EMA weights are what ship; write them now too, so a deadline never loses a model
            save(args, data, scale, ex_mean, ex_std, ema1, ema2, step, time.time() - t_start)
    # baselines' data: caption embeddings (text encoder) for retrieval and a ridge regressor
    save(args, data, scale, ex_mean, ex_std, ema1, ema2, step, time.time() - t_start,
         baselines=baselines(args, data, caps, face, ex_mean, ex_std))
    log("done")
    return 0


def baselines(args, data, caps, face, ex_mean, ex_std) -> dict[str, torch.Tensor]:
    from core.generate.text import TextEncoder
    rng = np.random.default_rng(args.seed + 7)
    pick = rng.choice(len(caps), size=min(args.baseline_captions, len(caps)), replace=False)
    pick = np.array([p for p in pick if caps[p]])
    enc = TextEncoder()
    emb = enc.encode([caps[p] for p in pick])
    f = face[pick]
    codes = np.concatenate([data["ict"][f], data["appearance"][f], (data["extras"][f] - ex_mean) / ex_std], 1)
    X = np.concatenate([emb, np.ones((len(emb), 1))], 1)
    lam = 1.0
    W = np.linalg.solve(X.T @ X + lam * np.eye(X.shape[1]), X.T @ codes)
    log(f"baselines: {len(pick)} caption embeddings, ridge {W.shape}")
    return {"nn_embeddings": torch.from_numpy(emb.astype(np.float16)),
            "nn_codes": torch.from_numpy(codes.astype(np.float32)),
            "ridge": torch.from_numpy(W.astype(np.float32))}


def save(args, data, scale, ex_mean, ex_std, ema1, ema2, step, seconds, baselines=None) -> None:
    out = Path(args.out)
    old = {}
    if baselines is None and out.exists():  # keep baselines from an earlier full run
        try:
            old = {k: v for k, v in torch.load(out, weights_only=True).items() if k.startswith("nn_") or k == "ridge"}
        except Exception:
            old = {}
    q = np.linspace(0, 1, 513)
    blob = {
        "format": "likeness-generate-v1",
        "net1": state_half(ema1), "net2": state_half(ema2),
        "scale_quantiles": torch.from_numpy(np.quantile(scale.sorted_values, q, axis=0).astype(np.float32)),
        "extras_mean": torch.from_numpy(ex_mean.astype(np.float32)),
        "extras_std": torch.from_numpy(ex_std.astype(np.float32)),
        "meta": json.dumps({"net1": ema1.config, "net2": ema2.config, "attributes": list(SCALARS),
                            "styles": list(HAIR_STYLES), "prediction": "v", "schedule": "cosine",
                            "schedule_steps": 1000, "steps": step, "train_seconds": round(seconds),
                            "faces": int(len(data["ict"])), "real_faces": int(data["real"].sum()),
                            "captions_per_face": args.captions, "prior_samples": args.prior,
                            "identity_drop": args.identity_drop, "width": args.width, "depth": args.depth}),
        **(baselines or old),
    }
    tmp = out.with_suffix(".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, out)


if __name__ == "__main__":
    sys.exit(main())
