"""`python main.py fit PHOTO --out avatar.likeness [--export head.glb] [--overlay fit.png]`."""
from __future__ import annotations

import json
import time
from pathlib import Path

from core.commands import UserError

NAME = "fit"
HELP = "Fit the face model to one photo: an animatable, textured avatar (.likeness)."


def add_arguments(p) -> None:
    p.add_argument("photo", help="JPEG or PNG (any size; EXIF orientation honoured)")
    p.add_argument("--out", required=True, help="avatar project to write (.likeness)")
    p.add_argument("--export", default=None, help="also export the avatar (.glb or .obj)")
    p.add_argument("--overlay", default=None, help="write the photo | fit side by side (PNG)")
    p.add_argument("--face", type=int, default=1, help="which face when there are several, 1 = largest (default)")
    p.add_argument("--texture-size", type=int, default=1024, choices=(512, 1024, 2048))
    p.add_argument("--neutral", action="store_true", help="reset the fitted expression to neutral")


def run(args) -> int:
    import cv2
    import numpy as np

    from core.fitting import FitError, PhotoError
    from core.fitting.pipeline import detect_faces, overlay_image, reconstruct
    from core.project import ProjectError, save_project

    out = Path(args.out)
    if out.suffix != ".likeness":
        raise UserError(f"--out should end in .likeness, got {out.name}")
    t0 = time.perf_counter()
    try:
        detected = detect_faces(args.photo)
        faces = detected[2]
        if len(faces) > 1:
            print(f"{len(faces)} faces found; fitting face {args.face} (1 = largest; choose with --face)")
        res = reconstruct(args.photo, face_index=args.face - 1, detected=detected,
                          texture_size=args.texture_size,
                          progress=lambda f, s: None)
    except (PhotoError, FitError) as exc:
        raise UserError(str(exc)) from None
    if args.neutral:
        res.avatar.set_expression(np.zeros(53, np.float32))
    try:
        save_project(res.avatar, out)
    except ProjectError as exc:
        raise UserError(str(exc)) from None
    fit = res.fit
    yaw, pitch, roll = fit.camera.yaw_pitch_roll
    print(f"fitted {args.photo} ({fit.image_size[0]}x{fit.image_size[1]} as fitted) in {fit.seconds:.1f} s: "
          f"head yaw {yaw:.0f}, pitch {pitch:.0f}, roll {roll:.0f} deg, focal {fit.camera.focal:.0f} px; "
          f"skin tone {tuple(int(c) for c in res.texture.skin_tone)}")
    print(f"wrote {out}")
    if args.overlay:
        cv2.imwrite(str(args.overlay), cv2.cvtColor(overlay_image(res), cv2.COLOR_RGB2BGR))
        print(f"wrote {args.overlay}")
    if args.export:
        from core.export import export_avatar
        from core.fitting.pipeline import shared_fitter
        try:
            export_avatar(res.avatar, args.export, shared_fitter().model)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot export {args.export}: {exc}") from None
        print(f"wrote {args.export}")
    from core.expressions import EXPRESSION_NAMES
    active = {n: round(float(w), 3) for n, w in zip(EXPRESSION_NAMES, res.avatar.expression) if w > 0.05}
    print(json.dumps({"photo": str(args.photo), "out": str(out), "faces": len(faces), "face": args.face,
                      "yaw_pitch_roll": [round(yaw, 1), round(pitch, 1), round(roll, 1)],
                      "expression": active, "seconds": round(time.perf_counter() - t0, 2)}))
    return 0
