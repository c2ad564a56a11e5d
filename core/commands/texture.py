"""`python main.py texture AVATAR --add-layer IMAGE [--blend multiply --opacity 0.5] --out AVATAR`:
paint layers over an avatar's texture without the studio (scripting, tests).

The avatar's texture as rendered and exported is the base (its appearance code or explicit
texture) with its paint layers composited over it (core.paint.avatar.painted_texture, called
from core.appearance.avatar_texture); --out stores the layers in the project's paint/ folder.
"""
from __future__ import annotations

import sys
from pathlib import Path

from . import UserError

NAME = "texture"
HELP = "paint layers on an avatar's texture: add images as layers, import/export PSD, flatten to PNG"


def add_arguments(p) -> None:
    p.add_argument("avatar", metavar="AVATAR", help="a .likeness project file, or 'default'")
    p.add_argument("--add-layer", action="append", default=[], metavar="IMAGE",
                   help="add a PNG/JPEG as a layer on top (repeatable; resampled to the texture size)")
    p.add_argument("--blend", action="append", default=[],
                   help="blend mode of the added layer(s): normal, multiply, screen, overlay, "
                        "'soft light', colour (once for all, or once per --add-layer)")
    p.add_argument("--opacity", action="append", type=float, default=[],
                   help="opacity 0..1 of the added layer(s) (once for all, or once per --add-layer)")
    p.add_argument("--name", action="append", default=[],
                   help="name of the added layer(s) (default: the file name), once per --add-layer")
    p.add_argument("--import-psd", metavar="PSD", help="add the layers of a PSD file on top")
    p.add_argument("--resolution", type=int, choices=(1024, 2048, 4096), default=None,
                   help="paint resolution of a new layer stack (default 2048; an existing one keeps its own)")
    p.add_argument("--export-psd", metavar="OUT.psd", help="write the layers (over the base) as a layered PSD")
    p.add_argument("--flatten", metavar="OUT.png", help="write the flattened texture (what renders) as PNG")
    p.add_argument("--export-layers", metavar="DIR", help="write each layer as a PNG with alpha into DIR")
    p.add_argument("--out", metavar="AVATAR", help="save the avatar with its layers (.likeness)")


def _per_layer(values: list, n: int, what: str, default):
    if not values:
        return [default] * n
    if len(values) == 1 and what != "--name":
        return values * n
    if len(values) != n:
        raise UserError(f"give {what} once for all layers or once per --add-layer "
                        f"({n} layer(s), {len(values)} {what} value(s))")
    return values


def run(args) -> int:
    from ..appearance import avatar_texture
    from ..paint import PaintError
    from ..paint.avatar import ensure_paint
    from ..paint.blend import normalise_mode
    from ..paint.files import export_flattened, export_layers, import_image_layer
    from ..project import ProjectError, load_project, save_project

    n = len(args.add_layer)
    if not (n or args.import_psd or args.export_psd or args.flatten or args.export_layers):
        raise UserError("nothing to do: give --add-layer, --import-psd, --export-psd, --flatten or --export-layers")
    if (args.blend or args.opacity or args.name) and not n:
        raise UserError("--blend, --opacity and --name describe layers added with --add-layer")
    blends = [normalise_mode(b) for b in _per_layer(args.blend, n, "--blend", "normal")]
    opacities = _per_layer(args.opacity, n, "--opacity", 1.0)
    names = _per_layer(args.name, n, "--name", None)
    for o in opacities:
        if not 0.0 <= o <= 1.0:
            raise UserError(f"--opacity must be between 0 and 1, got {o}")
    for f in args.add_layer + ([args.import_psd] if args.import_psd else []):
        if not Path(f).is_file():
            raise UserError(f"{f} does not exist")
    for out in (args.out, args.flatten, args.export_psd):
        if out and not Path(out).resolve().parent.is_dir():
            raise UserError(f"the output folder of {out} does not exist")
    if args.out and Path(args.out).suffix.lower() != ".likeness":
        raise UserError(f"--out must end in .likeness, got '{Path(args.out).name}'")

    try:
        if args.avatar == "default":
            from ..avatar import default_avatar
            from ..facemodel import FaceModel
            avatar = default_avatar(FaceModel.load())
        else:
            avatar = load_project(args.avatar)
        stack = ensure_paint(avatar, args.resolution or 2048)
        avatar_texture(avatar)   # sets the stack's base to the avatar's own texture
        for path, blend, opacity, name in zip(args.add_layer, blends, opacities, names):
            layer, note = import_image_layer(stack, path, name=name, blend=blend, opacity=opacity)
            if note:
                print(f"notice: {note}", file=sys.stderr)
        if args.import_psd:
            from ..paint.psd import import_psd
            _, notes = import_psd(stack, args.import_psd)
            for note in notes:
                print(f"notice: {note}", file=sys.stderr)
        avatar_texture(avatar)
        for i, l in enumerate(stack.layers):
            print(f"layer {i}: {l.name!r} {l.blend} opacity {l.opacity:.2f}"
                  f"{'' if l.visible else ' hidden'}")
        if args.flatten:
            print(export_flattened(stack, args.flatten))
        if args.export_layers:
            for p in export_layers(stack, args.export_layers):
                print(p)
        if args.export_psd:
            from ..paint.psd import export_psd
            print(export_psd(stack, args.export_psd))
        if args.out:
            avatar.set_dirty(True)
            print(save_project(avatar, args.out))
    except (PaintError, ProjectError) as exc:
        raise UserError(str(exc)) from None
    return 0
