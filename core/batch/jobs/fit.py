"""`batch fit`: photo -> avatar project (+ optional GLB/OBJ and overlay), as `main.py fit`."""
from __future__ import annotations

from pathlib import Path

from core.batch.adapter import BatchAdapter, Item, ItemFailed, ItemResult, Option, atomic_path

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


class FitAdapter(BatchAdapter):
    name = "fit"
    help = "Fit the face model to each photo: one avatar project (.likeness) per photo."
    suffixes = PHOTO_SUFFIXES
    options = (
        Option("face", int, 1, "which face when there are several, 1 = largest", minimum=1, maximum=1000),
        Option("texture_size", int, 1024, "texture resolution", choices=(512, 1024, 2048)),
        Option("neutral", bool, False, "reset the fitted expression to neutral"),
        Option("export", str, "", "also export the avatar as glb or obj", choices=("", "glb", "obj")),
        Option("overlay", bool, False, "also write the photo | fit side by side (PNG)"),
    )
    typical_memory_mb = 1000           # measured: ~950 MB after fitting (bench/batch.py)

    def load(self, threads: int, settings: dict):
        from core.fitting.pipeline import _appearance_model, shared_fitter
        fitter = shared_fitter()          # face model, detector, landmarker, correspondence tables
        _appearance_model()               # texture model, loaded once
        from core.render.renderer import default_texture, headless_context
        headless_context()                # the GL context the texture projection rasterises on
        default_texture()
        return fitter

    def outputs(self, item: Item) -> list[str]:
        names = [f"{item.id}.likeness"]
        if item.options.get("export"):
            names.append(f"{item.id}.{item.options['export']}")
        if item.options.get("overlay"):
            names.append(f"{item.id}_overlay.png")
        return names

    def process(self, fitter, item: Item, out_dir: Path) -> ItemResult:
        import cv2
        import numpy as np

        from core.fitting.pipeline import detect_faces, overlay_image, reconstruct
        from core.project import save_project

        opts = item.options
        detected = detect_faces(item.input, fitter)
        faces = detected[2]
        res = reconstruct(item.input, face_index=opts.get("face", 1) - 1, detected=detected, fitter=fitter,
                          texture_size=opts.get("texture_size", 1024), name=Path(item.input).stem)
        if opts.get("neutral"):
            res.avatar.set_expression(np.zeros(53, np.float32))
        names = self.outputs(item)
        with atomic_path(out_dir / names[0]) as tmp:
            save_project(res.avatar, tmp)
        if opts.get("export"):
            from core.export import export_avatar
            with atomic_path(out_dir / f"{item.id}.{opts['export']}") as tmp:
                export_avatar(res.avatar, tmp, fitter.model)
        if opts.get("overlay"):
            with atomic_path(out_dir / f"{item.id}_overlay.png") as tmp:
                if not cv2.imwrite(str(tmp), cv2.cvtColor(overlay_image(res), cv2.COLOR_RGB2BGR)):
                    raise ItemFailed(f"cannot write {tmp.name}")
        fit = res.fit
        yaw, pitch, roll = fit.camera.yaw_pitch_roll
        return ItemResult(names, {
            "faces": len(faces), "face": opts.get("face", 1),
            "size": [int(fit.image_size[0]), int(fit.image_size[1])],
            "yaw_pitch_roll": [round(float(yaw), 1), round(float(pitch), 1), round(float(roll), 1)],
            "focal_px": round(float(fit.camera.focal), 1),
            "skin_tone": [int(c) for c in res.texture.skin_tone],
            "fit_seconds": round(float(fit.seconds), 2),
            "active_expressions": int((res.avatar.expression > 0.05).sum()),
        })


ADAPTER = FitAdapter()
