"""`python main.py synth-fer --n N --out DIR [--seed S]`: labelled synthetic expression faces
(renders of avatars) with a pseudo-label check by the shipped classifier (core.synth)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from . import UserError

NAME = "synth-fer"
HELP = "render labelled synthetic expression faces (images, FER crops, AUs, boxes) into a folder"


def add_arguments(p) -> None:
    p.add_argument("--n", type=int, required=True, help="faces to render (classes balanced)")
    p.add_argument("--out", required=True, help="output folder (new or empty)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--real", default=".cache/appearance/samples",
                   help="fitted real faces to draw people from (core.appearance.samples cache; "
                        "missing: prior identities only)")
    p.add_argument("--per-person", type=int, default=64, help="renders of each synthetic person")


def run(args) -> int:
    from ..synth.dataset import SynthError, generate

    if not 1 <= args.n <= 1_000_000:
        raise UserError("--n must be between 1 and 1,000,000")
    if args.per_person < 1:
        raise UserError("--per-person must be at least 1")
    real = Path(args.real)
    if not real.is_dir():
        print(f"note: no fitted real faces at {real}: every person is drawn from the priors", file=sys.stderr)
    try:
        report = generate(args.n, Path(args.out), seed=args.seed, real_samples=real if real.is_dir() else None,
                          shots_per_person=args.per_person,
                          progress=lambda f, s: print(f"[{f:4.0%}] {s}", file=sys.stderr))
    except SynthError as exc:
        raise UserError(str(exc)) from None
    print(f"{report['faces']} faces from {report['people']} people in {report['seconds']:.0f} s "
          f"({report['faces_per_second']:.1f}/s; {report['loop_faces_per_second']:.1f}/s after "
          f"{report['setup_seconds']:.0f} s loading models); kept {report['kept']}, dropped {report['dropped']} whose "
          f"expression the classifier did not read as intended")
    for c, d in report["per_class"].items():
        print(f"  {c:9s} kept {d['kept']}/{d['made']}")
    print(json.dumps(report))
    return 0
