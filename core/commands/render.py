"""`python main.py render`: draw an avatar (or the mean face) to a PNG without a window."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from core.commands import UserError

NAME = "render"
HELP = "Render an avatar to a PNG image headlessly (mesh or signed-distance-field renderer)."

BACKGROUNDS = {"dark": (0.16, 0.17, 0.19), "grey": (0.5, 0.5, 0.5), "white": (1.0, 1.0, 1.0),
               "black": (0.0, 0.0, 0.0), "green": (0.0, 0.7, 0.25)}


def parse_colour(text: str) -> tuple[float, float, float]:
    """'dark', '#1e2024' or '0.2,0.2,0.25' -> linear-ish RGB floats in [0,1]."""
    t = text.strip().lower()
    if t in BACKGROUNDS:
        return BACKGROUNDS[t]
    try:
        if t.startswith("#") and len(t) == 7:
            return tuple(int(t[i:i + 2], 16) / 255.0 for i in (1, 3, 5))
        parts = [float(p) for p in t.split(",")]
        if len(parts) == 3 and all(0.0 <= p <= 1.0 for p in parts):
            return tuple(parts)
    except ValueError:
        pass
    raise UserError(f"--background '{text}': use a name ({', '.join(BACKGROUNDS)}), "
                    "#rrggbb or r,g,b with values in 0..1")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from core.render import MODES, VIEWS
    from core.render.lighting import PRESETS

    p.add_argument("--avatar", metavar="FILE", help=".likeness avatar (default: the mean face)")
    p.add_argument("--expression", default="", metavar="NAME=W,...",
                   help="expression weights, e.g. jawOpen=0.8,mouthSmile_L=0.5, or a preset (happy, sad, ...)")
    p.add_argument("--yaw", type=float, default=25.0, help="camera yaw in degrees (0 = front; default 25)")
    p.add_argument("--pitch", type=float, default=8.0, help="camera pitch in degrees (default 8)")
    p.add_argument("--zoom", type=float, default=1.0, help="> 1 moves the camera closer (default 1)")
    p.add_argument("--mode", default="mesh", choices=MODES,
                   help="mesh: triangle mesh; sdf: sphere-traced baked distance grid; "
                        "neural: the network evaluated in the shader (needs a real GPU to be fast)")
    p.add_argument("--view", default="shaded", choices=VIEWS)
    p.add_argument("--lighting", default="studio", choices=PRESETS)
    p.add_argument("--background", default="dark", help="name, #rrggbb or r,g,b (default dark)")
    p.add_argument("--transparent", action="store_true", help="write an RGBA PNG, background alpha 0")
    p.add_argument("--landmarks", action="store_true", help="overlay the 68 landmarks as dots")
    p.add_argument("--size", type=int, default=512, help="image width and height in pixels (default 512)")
    p.add_argument("--resolution", type=int, default=128,
                   help="mesh / SDF grid resolution taken from the face model (default 128)")
    p.add_argument("--samples", type=int, default=4, choices=(0, 2, 4, 8), help="MSAA samples (default 4)")
    p.add_argument("--hair", metavar="STYLE[,length=L,hairline=H,grey=G,colour=#rrggbb]",
                   help="hair style (bald, buzz, short, medium, long, tied) with optional settings; "
                        "default: the avatar's")
    p.add_argument("--out", required=True, help="output .png path")


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from core.expressions import parse_expression
    from core.render import OrbitCamera, Renderer, headless_context, lighting_preset
    from core.render.scene import load_avatar_file, load_scene, show_scene

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UserError(f"--out must end in .png, got '{args.out}'")
    if not out.parent.exists():
        raise UserError(f"output folder {out.parent} does not exist")
    if not 16 <= args.size <= 8192:
        raise UserError(f"--size must be between 16 and 8192, got {args.size}")
    if not 16 <= args.resolution <= 512:
        raise UserError(f"--resolution must be between 16 and 512, got {args.resolution}")
    if args.zoom <= 0:
        raise UserError("--zoom must be positive")
    if args.view == "wireframe" and args.mode != "mesh":
        raise UserError("--view wireframe needs --mode mesh (a distance field has no edges)")
    background = parse_colour(args.background)
    try:
        expression = parse_expression(args.expression) if args.expression else None
    except ValueError as exc:
        raise UserError(f"--expression: {exc}") from None

    hair = parse_hair(args.hair) if args.hair else None
    avatar = load_avatar_file(args.avatar) if args.avatar else None
    scene = load_scene(avatar, expression, resolution=args.resolution, hair=hair)
    r = Renderer(headless_context(), samples=args.samples)
    try:
        show_scene(r, scene)            # skin, eyes, teeth, mouth cavity, hair, posed
        if args.mode == "sdf":
            r.set_sdf_grid(*scene.sdf())
        elif args.mode == "neural":
            stages = scene.stages()
            if not stages:
                raise UserError(f"--mode neural needs the face model's networks ({scene.source} has none)")
            r.set_neural(stages)
        if args.landmarks:
            pts = scene.landmarks()
            if pts is None:
                raise UserError(f"--landmarks: the {scene.source} has no landmarks")
            r.set_points(pts, size=max(3.0, args.size / 100))
        # Frame the mesh in every mode so mesh and SDF renders line up.
        cam = OrbitCamera(yaw=args.yaw, pitch=args.pitch).frame(*r.bounds("mesh"), margin=0.9)
        cam.zoom(args.zoom)
        img = r.render_image(args.size, args.size, cam, mode=args.mode, view=args.view,
                             background=background, lighting=lighting_preset(args.lighting))
    finally:
        r.release()
    if args.transparent:
        Image.fromarray(img, "RGBA").save(out)
    else:
        Image.fromarray(np.ascontiguousarray(img[..., :3]), "RGB").save(out)
    print(f"wrote {out} ({args.size}x{args.size}, {args.mode}/{args.view}, {scene.source})",
          file=sys.stderr)
    return 0


def parse_hair(text: str):
    """'long' or 'long,length=0.8,hairline=-0.5,grey=0.3,colour=#c8a060' -> HairStyle."""
    from core.head.settings import HAIR_STYLES, HairStyle

    style, *rest = [t.strip() for t in text.split(",")]
    if style not in HAIR_STYLES:
        raise UserError(f"--hair: style must be one of {', '.join(HAIR_STYLES)}, got '{style}'")
    kw: dict = {"style": style}
    for item in rest:
        key, _, value = item.partition("=")
        key = {"color": "colour"}.get(key.strip(), key.strip())
        if key not in ("length", "hairline", "grey", "colour") or not value:
            raise UserError(f"--hair: expected length=, hairline=, grey= or colour=, got '{item}'")
        try:
            kw[key] = parse_colour(value) if key == "colour" else float(value)
        except ValueError:
            raise UserError(f"--hair: '{value}' is not a number") from None
    try:
        return HairStyle(**kw)
    except ValueError as exc:
        raise UserError(f"--hair: {exc}") from None
