"""`python main.py edit A.likeness "make the nose longer" --out b.likeness [--strength 0.5]`."""
from __future__ import annotations

import json
from pathlib import Path

from core.commands import UserError

NAME = "edit"
HELP = "Edit an avatar by text, keeping what the sentence does not mention."


def add_arguments(p) -> None:
    p.add_argument("avatar", help="avatar project to edit (.likeness)")
    p.add_argument("text", help='what to change, e.g. "make the nose longer", "darker hair", "fuller lips"')
    p.add_argument("--out", required=True, help="edited avatar project to write (.likeness)")
    p.add_argument("--strength", type=float, default=0.5, help="0 keeps the avatar, 1 redraws the touched "
                   "parts freely (default 0.5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--guidance", type=float, default=5.0, help="classifier-free guidance (default 5)")
    p.add_argument("--model", default=None, help="generation model file (default: the shipped one)")


def run(args) -> int:
    from core.commands.generate import load_generator
    from core.generate.attributes import SCALARS
    from core.project import ProjectError, load_project, save_project

    out = Path(args.out)
    if out.suffix != ".likeness":
        raise UserError(f"--out should end in .likeness, got {out.name}")
    if not 0 <= args.strength <= 1:
        raise UserError(f"--strength must be in [0, 1], got {args.strength}")
    if not Path(args.avatar).exists():
        raise UserError(f"avatar file {args.avatar} not found")
    try:
        avatar = load_project(args.avatar)
    except ProjectError as exc:
        raise UserError(str(exc)) from None
    gen = load_generator(args.model)
    try:
        cand = gen.edit(avatar, args.text, strength=args.strength, seed=args.seed, guidance=args.guidance)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    edited = cand.to_avatar(name=avatar.name)
    if avatar.texture is not None and cand.appearance is not None and \
            not any(a in cand.reading.targets for a in ("skin_tone", "lip_colour", "cheek_colour",
                                                         "facial_hair", "freckles", "brow_thickness", "brow_darkness")):
        edited.set_texture(avatar.texture)  # a photo texture stays unless the sentence is about the skin
    try:
        save_project(edited, out)
    except ProjectError as exc:
        raise UserError(str(exc)) from None
    print(cand.reading.summary())
    z0 = cand.meta["z_before"]
    z1 = gen.scale.z(gen.measure(edited.identity, cand.appearance, edited.hair, edited.eyes)[None])[0]
    moved = {a: round(float(z1[i] - z0[i]), 2) for i, a in enumerate(SCALARS) if abs(z1[i] - z0[i]) >= 0.1}
    print(f"wrote {out}")
    print(json.dumps({"text": args.text[:200], "strength": args.strength, "reading": cand.reading.to_dict(),
                      "moved_z": moved, "out": str(out)}))
    return 0
