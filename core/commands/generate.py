"""`python main.py generate "PROMPT" --out a.likeness [--n 4 --seed S --guidance G
--negative "..."] [--export a.glb] [--preview a.png]`."""
from __future__ import annotations

import json
import time
from pathlib import Path

from core.commands import UserError

NAME = "generate"
HELP = "Generate avatars from a text prompt (two-stage latent diffusion; see docs/GENERATE.md)."


def add_arguments(p) -> None:
    p.add_argument("prompt", help='description, e.g. "a long narrow nose, full lips, short blond hair"')
    p.add_argument("--out", required=True, help="avatar project (.likeness); with --n > 1 the others "
                   "are written beside it as NAME_2.likeness ...")
    p.add_argument("--n", type=int, default=1, help="number of candidates, 1-8 (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same avatars)")
    from core.generate.generator import DEFAULT_GUIDANCE
    p.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE,
                   help=f"classifier-free guidance, 0-20 (default {DEFAULT_GUIDANCE:g})")
    p.add_argument("--negative", default="", help='negative prompt, e.g. "big ears"')
    p.add_argument("--steps", type=int, default=20, help="sampler steps (DPM-Solver++, default 20)")
    p.add_argument("--export", default=None, help="also export the first candidate (.glb or .obj)")
    p.add_argument("--preview", default=None, help="write a PNG of the candidates side by side")
    p.add_argument("--model", default=None, help="generation model file (default: the shipped one)")


def out_paths(out: Path, n: int) -> list[Path]:
    return [out] + [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(2, n + 1)]


def load_generator(path):
    from core.generate.generator import GenerateModelError, TextToAvatar, shared_generator
    try:
        return TextToAvatar(path) if path else shared_generator()
    except GenerateModelError as exc:
        raise UserError(str(exc)) from None


def run(args) -> int:
    from core.project import ProjectError, save_project

    out = Path(args.out)
    if out.suffix != ".likeness":
        raise UserError(f"--out should end in .likeness, got {out.name}")
    if not out.parent.exists():
        raise UserError(f"output folder {out.parent} does not exist")
    if not 1 <= args.n <= 8:
        raise UserError(f"--n must be 1 to 8, got {args.n}")
    if not 0 <= args.guidance <= 20:
        raise UserError(f"--guidance must be in [0, 20], got {args.guidance}")
    if not 1 <= args.steps <= 200:
        raise UserError(f"--steps must be 1 to 200, got {args.steps}")
    if args.preview and not args.preview.lower().endswith(".png"):
        raise UserError(f"--preview must end in .png, got {args.preview}")
    t0 = time.perf_counter()
    gen = load_generator(args.model)
    t_load = time.perf_counter() - t0
    t1 = time.perf_counter()
    cands = gen.generate(args.prompt, n=args.n, seed=args.seed, guidance=args.guidance,
                         negative=args.negative, steps=args.steps)
    t_gen = time.perf_counter() - t1
    reading = cands[0].reading
    print(reading.summary())
    paths = out_paths(out, len(cands))
    for i, (c, p) in enumerate(zip(cands, paths)):
        try:
            save_project(c.to_avatar(name=f"{args.prompt[:40] or 'Generated'} #{i + 1}"), p)
        except ProjectError as exc:
            raise UserError(str(exc)) from None
        print(f"wrote {p}")
    if args.export:
        from core.export import export_avatar
        try:
            export_avatar(cands[0].to_avatar(), args.export, gen.face_model)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot export {args.export}: {exc}") from None
        print(f"wrote {args.export}")
    if args.preview:
        from PIL import Image

        from core.generate.preview import contact_sheet, render_avatar
        imgs = [render_avatar(c.to_avatar(), 256, face_model=gen.face_model) for c in cands]
        Image.fromarray(contact_sheet(imgs, [f"#{i + 1} seed {args.seed}" for i in range(len(imgs))])).save(args.preview)
        print(f"wrote {args.preview}")
    print(json.dumps({"prompt": args.prompt[:200], "n": len(cands), "seed": args.seed,
                      "guidance": args.guidance, "reading": reading.to_dict(),
                      "out": [str(p) for p in paths], "load_seconds": round(t_load, 2),
                      "generate_seconds": round(t_gen, 3)}))
    return 0
