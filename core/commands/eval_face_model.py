"""`python main.py eval-face-model`: measure the face model against ICT FaceKit ground truth.

Prints one line per figure (model, mean-face baseline, target) and, last, the figures as JSON.
"""
from __future__ import annotations

import argparse
import json

from core.commands import UserError

NAME = "eval-face-model"
HELP = "measure the face model (surface, UV, animation error, speed) against ICT FaceKit"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--facekit", help="ict_facekit_light.npz or its folder (default ../shared/facekit)")
    parser.add_argument("--model", help="face model file (default resources/models/face_model.pt)")
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)


def run(args: argparse.Namespace) -> int:
    import torch

    from core.facekit import load_facekit
    from core.facemodel.data import FaceData
    from core.facemodel.evaluate import evaluate, format_report
    from core.facemodel.model import DEFAULT_PATH, FaceModel, ModelLoadError

    if args.samples < 1:
        raise UserError("--samples must be at least 1")
    torch.set_num_threads(args.threads)
    data = FaceData(load_facekit(args.facekit))
    try:
        model = FaceModel.load(args.model)
    except ModelLoadError as exc:
        raise UserError(str(exc)) from None
    out = evaluate(model, data, args.samples, args.seed, args.resolution,
                   model_path=args.model or DEFAULT_PATH, log=print)
    for line in format_report(out):
        print(line)
    print(json.dumps(out))
    return 0
