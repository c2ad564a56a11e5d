"""`python main.py train-face-model`: train the implicit face model from ICT FaceKit on the CPU.

Resumable: checkpoints go to --work (default .cache/facemodel); rerunning continues from there.
When training ends the checkpoint is finalised into --out (float16, loads with weights_only=True).
Reproduce the shipped weights with:
    nice -n 10 python main.py train-face-model --minutes 38 --seed 0
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from core.commands import UserError
from core.paths import MODELS_DIR, REPO_ROOT

NAME = "train-face-model"
HELP = "train the implicit morphable face model from ICT FaceKit (CPU, resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--facekit", help="ict_facekit_light.npz or its folder (default ../shared/facekit)")
    parser.add_argument("--out", default=str(MODELS_DIR / "face_model.pt"), help="finalised model path")
    parser.add_argument("--work", default=str(REPO_ROOT / ".cache" / "facemodel"), help="checkpoint folder")
    parser.add_argument("--minutes", type=float, default=38.0, help="training time budget")
    parser.add_argument("--steps", type=int, default=100_000, help="step limit (the time budget usually ends first)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument("--finalize-only", action="store_true",
                        help="only turn the checkpoint in --work into the model at --out")


def run(args: argparse.Namespace) -> int:
    import torch

    from core.facekit import load_facekit
    from core.facemodel.data import FaceData

    torch.set_num_threads(args.threads)
    fk = load_facekit(args.facekit)  # MissingDataError names the file and how to point at it
    data = FaceData(fk)
    work = Path(args.work)
    log_path = work / "train.log"
    work.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        with open(log_path, "a") as f:
            f.write(line + "\n")

    if not args.finalize_only:
        from core.facemodel.train import train

        log(f"training: facekit {fk.path}, seed {args.seed}, {args.minutes} min budget")
        train(data, work, steps=args.steps, seed=args.seed, minutes=args.minutes,
              resume=not args.fresh, log=log)
    ckpt = work / "ckpt.pt"
    if not ckpt.exists():
        raise UserError(f"no checkpoint at {ckpt}; train first")
    from core.facemodel.finalize import finalize  # imported late: training can run for long

    info = finalize(ckpt, Path(args.out), data, log=log)
    log(f"wrote {args.out} ({info['bytes'] / 1e6:.1f} MB, {info['steps']} steps, "
        f"{info['train_seconds'] / 60:.1f} min)")
    return 0
