"""`python main.py export AVATAR --out head.glb`: export an avatar as GLB (with the 53 ARKit
morph targets) or OBJ + MTL + PNG."""
from __future__ import annotations

import sys
from pathlib import Path

from . import UserError

NAME = "export"
HELP = "export an avatar (.likeness file or 'default') to .glb with ARKit morph targets, or .obj"


def add_arguments(p) -> None:
    p.add_argument("avatar", metavar="AVATAR", help="a .likeness project file, or 'default'")
    p.add_argument("--out", required=True, help="output file: .glb or .obj (+ .mtl and .png beside it)")
    p.add_argument("--expression", default=None,
                   help="override the expression: a preset (happy, ...) or 'jawOpen=0.8,eyeBlink_L=1'")
    p.add_argument("--resolution", type=int, default=128, help="mesh extraction grid resolution (default 128)")
    p.add_argument("--max-triangles", type=int, default=0,
                   help="decimate the mesh to about this many triangles (default 0: full detail)")


def run(args) -> int:
    from ..avatar import default_avatar
    from ..export import EXPORT_SUFFIXES, export_avatar
    from ..expressions import parse_expression
    from ..facemodel import FaceModel
    from ..project import ProjectError, load_project

    out = Path(args.out)
    if out.suffix.lower() not in EXPORT_SUFFIXES:
        raise UserError(f"--out must end in .glb or .obj, got '{out.name}'")
    if not out.parent.is_dir():
        raise UserError(f"the output folder {out.parent} does not exist")
    model = FaceModel.load()
    if args.avatar == "default":
        avatar = default_avatar(model)
    else:
        try:
            avatar = load_project(args.avatar, identity_dim=model.identity_dim)
        except ProjectError as exc:
            raise UserError(str(exc)) from None
    if args.expression is not None:
        avatar.set_expression(parse_expression(args.expression))
    files = export_avatar(avatar, out, model, resolution=args.resolution,
                          max_triangles=args.max_triangles or None,
                          progress=lambda f, s: print(f"[{f:4.0%}] {s}", file=sys.stderr))
    for f in files:
        print(f)
    return 0
