"""The fuzzed readers: a valid sample of every user file kind (built from our own data) and the
function that reads it, with the module's own error type. A new reader is one `Reader` entry at
the END of `READERS` (each reader's position seeds its cases, so earlier runs stay reproducible).
"""
from __future__ import annotations

import io
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np


# --- samples: valid files of each kind, built from our own data ----------------------------------

def _project_bytes(version: int) -> bytes:
    """A project of format `version`: 3 with two paint layers (paint/ folder), 2 and 1 without."""
    from core.avatar import Avatar, ViewSettings
    from core.head.settings import EyeSettings, HairStyle
    from core.project import save_project

    rng = np.random.default_rng(7)
    w = np.zeros(53, np.float32)
    w[[3, 24, 40]] = (0.5, 0.8, 0.2)
    tex = (rng.uniform(0, 255, (24, 32, 3))).astype(np.uint8)
    av = Avatar(rng.normal(0, 1, 16).astype(np.float32), w, tex, name="Fuzz",
                view=ViewSettings(mode="shaded", lighting="ibl"),
                appearance=rng.normal(0, 1, 8).astype(np.float32),
                eyes=EyeSettings(pupil_size=0.5), hair=HairStyle(style="long", grey=0.3))
    if version == 3:
        from core.paint.avatar import attach_paint
        attach_paint(av, _paint_stack())
    with tempfile.TemporaryDirectory() as d:
        data = save_project(av, Path(d) / "s.likeness").read_bytes()
    if version == 3:
        return data
    src = zipfile.ZipFile(io.BytesIO(data))
    m = json.loads(src.read("project.json"))
    m["format_version"] = version
    if version == 1:   # what an older Likeness wrote (no appearance, eyes or hair)
        for k in ("eyes", "hair"):
            m.pop(k)
        m["arrays"].pop("appearance")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in src.namelist():
            if version > 1 or name != "appearance.npy":
                zf.writestr(name, json.dumps(m, indent=2) if name == "project.json" else src.read(name))
    return out.getvalue()


def _paint_stack():
    """A 1024^2 stack (the smallest resolution) with two small painted layers: one with a mask,
    opacity and a blend mode, one hidden."""
    from core.paint.layers import LayerStack

    stack = LayerStack(1024)
    px = np.zeros((1024, 1024, 4), np.uint8)
    px[100:164, 200:296] = (200, 40, 30, 255)
    px[130:140, 210:400, 3] = 90
    a = stack.add_layer("Freckles", pixels=px, opacity=0.7, blend="multiply")
    a.mask = np.full((1024, 1024), 255, np.uint8)
    a.mask[:, 240:] = 60
    px2 = np.zeros_like(px)
    px2[600:640, 500:520] = (10, 200, 90, 128)
    stack.add_layer("Hidden", pixels=px2, visible=False)
    return stack


def _recovery_bytes() -> bytes:
    from core.paint.files import save_recovery

    with tempfile.TemporaryDirectory() as d:
        return save_recovery(_paint_stack(), Path(d) / "r.zip").read_bytes()


def _psd_bytes() -> list[bytes]:
    """Two PSDs: a small one a painter might hand us (64x48, RGB, two pixel layers of other
    sizes, opacity, a blend mode, a hidden layer, a group) and one exported by Likeness."""
    from psd_tools import PSDImage
    from psd_tools.constants import BlendMode

    from core.paint.psd import export_psd

    doc = PSDImage.new("RGB", (64, 48), depth=8)
    y, x = np.mgrid[0:20, 0:30]
    rgba = np.stack([x * 8, y * 12, (x + y) * 5, np.full_like(x, 200)], -1).astype(np.uint8)
    doc.create_pixel_layer_from_array(rgba, name="Skin", top=4, left=6)
    hidden = doc.create_pixel_layer_from_array(rgba[:10, :12], name="Dots", top=30, left=40, opacity=128,
                                               blend_mode=BlendMode.MULTIPLY)
    hidden.visible = False
    group = doc.create_group(name="Group")
    group.append(doc.create_pixel_layer_from_array(rgba[::2, ::2], name="Inner", top=0, left=0))
    out = []
    with tempfile.TemporaryDirectory() as d:
        doc.save(Path(d) / "a.psd")
        out.append((Path(d) / "a.psd").read_bytes())
        out.append(export_psd(_paint_stack(), Path(d) / "b.psd", include_base=False).read_bytes())
    return out


def _layer_image_bytes() -> list[bytes]:
    """A layer as painters save it (RGBA PNG with soft alpha), a JPEG and a 16-bit grey PNG."""
    from PIL import Image

    y, x = np.mgrid[0:64, 0:80]
    rgba = np.stack([x * 3, y * 4, (x + y) % 255, (x * y) % 256], -1).astype(np.uint8)
    out = []
    for im, fmt in ((Image.fromarray(rgba, "RGBA"), "PNG"),
                    (Image.fromarray(rgba[..., :3]), "JPEG"),
                    (Image.fromarray((x * 800 + y).astype(np.uint16)), "PNG")):
        buf = io.BytesIO()
        im.save(buf, fmt)
        out.append(buf.getvalue())
    return out


def _image_bytes(fmt: str) -> bytes:
    from PIL import Image

    y, x = np.mgrid[0:72, 0:96]
    img = np.stack([x * 2, y * 3, (x + y) % 255], -1).astype(np.uint8)
    im = Image.fromarray(img)
    buf = io.BytesIO()
    if fmt == "JPEG":
        exif = Image.Exif()
        exif[0x0112] = 6   # orientation: rotated, so the EXIF path runs
        im.save(buf, "JPEG", quality=80, exif=exif.tobytes())
    else:
        im.save(buf, fmt)
    return buf.getvalue()


def _pts_bytes() -> bytes:
    pts = np.random.default_rng(3).uniform(10, 90, (68, 2))
    return ("version: 1\nn_points:  68\n{\n" + "".join(f"{a:.3f} {b:.3f}\n" for a, b in pts)
            + "}\n").encode()


def _face_model_bytes() -> bytes:
    """A small face model file (same format and loader as resources/models/face_model.pt)."""
    from core.facemodel.model import FaceModel
    from core.facemodel.net import FaceNet, FaceNetConfig

    cfg = FaceNetConfig(identity_dim=8, sdf_voxel=3.0, feat_grids=((6.0, 2), (4.0, 2)), octaves=1,
                        width=8, shader_warp=(1, 8, 1), shader_sdf=(1, 8, 1))
    with tempfile.TemporaryDirectory() as d:
        FaceModel(FaceNet(cfg), {"note": "fuzz sample"}).save(Path(d) / "m.pt", half=True)
        return (Path(d) / "m.pt").read_bytes()


def _fer_model_bytes() -> bytes:
    from core.fer.model import FerNet, save_export

    with tempfile.TemporaryDirectory() as d:
        p = save_export([FerNet(width=4), FerNet(width=4, arch="res")], Path(d) / "f.pt", {"flip": True})
        return p.read_bytes()


def _video_bytes() -> bytes:
    import cv2

    with tempfile.TemporaryDirectory() as d:
        p = str(Path(d) / "v.avi")
        w = cv2.VideoWriter(p, cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (48, 32))
        for i in range(6):
            w.write(np.full((32, 48, 3), 40 * i, np.uint8))
        w.release()
        return Path(p).read_bytes()


# --- readers ----------------------------------------------------------------------------------

def _read_project(p: Path):
    from core.project import load_project
    return load_project(p)


def _read_photo(p: Path):
    from core.fitting.photo import load_photo
    return load_photo(p)


def _read_pts(p: Path):
    from core.fitting.evaluate import read_pts
    return read_pts(p)


def _read_face_model(p: Path):
    from core.facemodel.model import FaceModel
    return FaceModel.load(p)


def _read_fer_model(p: Path):
    from core.fer.model import load_models
    return load_models(p)


def _read_video(p: Path):
    from core.video.sources import VideoFileSource
    with VideoFileSource(p) as src:
        return sum(1 for _, f in zip(range(500), src))


def _read_correspondence(p: Path):
    from core.fitting.correspondence import load_correspondence
    return load_correspondence(p)


def _read_calibration68(p: Path):
    from core.fitting.correspondence import load_landmark_calibration
    return load_landmark_calibration(p)


def _read_appearance(p: Path):
    from core.appearance.model import AppearanceModel
    return AppearanceModel.load(p)


def _clip_sample():
    """A short clip with keys of both kinds, markers and a second of audio."""
    from core.animation import AudioTrack, Clip
    rng = np.random.default_rng(11)
    clip = Clip.from_streams(rng.uniform(0, 0.6, (30, 53)), rng.normal(0, 5, (30, 3)),
                             rng.normal(0, 0.5, (30, 3)), fps=25, name="Fuzz clip", source="test")
    clip.set_key("jawOpen", 3, 0.8, "linear")
    clip.set_key("jawOpen", 20, 0.1)
    clip.set_key("head.yaw", 10, 12.0)
    clip.add_marker(5, "nod")
    clip.audio = AudioTrack(np.sin(np.arange(4000) / 7.0).astype(np.float32) * 0.3, 8000, 0.1)
    return clip


def _clip_bytes() -> list[bytes]:
    from core.animation.files import clip_to_bytes
    return [clip_to_bytes(_clip_sample())]


def _clip_project_bytes() -> list[bytes]:
    """A format-4 project holding two clips."""
    from core.animation import Clip
    from core.avatar import Avatar
    from core.project import save_project
    av = Avatar(np.zeros(16, np.float32), name="Clips", clips=[_clip_sample(), Clip.still(5)])
    with tempfile.TemporaryDirectory() as d:
        return [save_project(av, Path(d) / "c.likeness").read_bytes()]


def _read_clip(p: Path):
    from core.animation.files import load_clip
    clip = load_clip(p)
    return clip.evaluated()      # keys must evaluate too


def _read_clip_project(p: Path):
    from core.project import load_project
    av = load_project(p)
    return [c.evaluated() for c in av.clips]


def _batch_manifest_bytes(kind: str) -> list[bytes]:
    """Input manifests of `batch fit` (docs/BATCH.md): per-item options, ids, relative paths."""
    rows = [{"input": "photos/a.jpg", "id": "a", "face": 1, "texture_size": 1024},
            {"input": "/data/b.png", "neutral": True, "export": "glb", "_note": "kept aside"},
            {"input": "c d.jpg", "id": "c-2", "overlay": False, "texture_size": 512}]
    if kind == "jsonl":
        return ["\n".join(json.dumps(r) for r in rows).encode() + b"\n"]
    cols = ["input", "id", "face", "texture_size", "neutral", "export", "overlay", "_note"]
    lines = [",".join(cols)] + [",".join(json.dumps(r[c]).strip('"').lower() if c in r else "" for c in cols)
                                for r in rows]
    return [("\n".join(lines) + "\n").encode(), ("\r\n".join(lines)).encode("utf-8-sig")]


def _read_batch_manifest(p: Path):
    from core.batch.inputs import read_manifest
    from core.batch.jobs.fit import ADAPTER
    return read_manifest(p, {o.name: o for o in ADAPTER.options})


def _batch_results_bytes() -> list[bytes]:
    recs = [{"key": f"{k:016x}", "id": f"photo{k}", "input": f"/in/photo{k}.jpg", "status": st,
             "outputs": [f"photo{k}.likeness"] if st == "ok" else [], "figures": {"faces": 1},
             "error": None if st == "ok" else "No face was found in the photo.", "seconds": 2.5,
             "worker": "node:1", "attempt": 1, "finished": "2026-01-01T00:00:00+00:00", "options": {"face": 1}}
            for k, st in enumerate(("ok", "failed", "ok", "error"))]
    return ["".join(json.dumps(r) + "\n" for r in recs).encode()]


def _read_batch_results(p: Path):
    from core.batch.results import is_done, read_results
    records, _ = read_results(p)
    return [is_done(r, p.parent, False) for r in records.values()]


def _read_listener_model(p: Path):
    from core.listener.generate import Listener
    return Listener.load(p)


def _caption_refs_bytes() -> list[bytes]:
    """The shipped hand-made caption references (resources/captions/media_refs.json)."""
    from core.paths import RESOURCES
    return [(RESOURCES / "captions" / "media_refs.json").read_bytes()]


def _read_caption_refs(p: Path):
    from core.caption.evaluate import read_refs
    return read_refs(p)


def _read_paint_project(p: Path):
    from core.paint.avatar import paint_of
    from core.project import load_project
    av = load_project(p)
    stack = paint_of(av)
    return av, None if stack is None else stack.composite()   # the layers must also composite


def _read_psd(p: Path):
    from core.paint.layers import LayerStack
    from core.paint.psd import import_psd
    stack = LayerStack(1024)
    import_psd(stack, p)
    return stack.composite()


def _read_layer_image(p: Path):
    from core.paint.files import import_image_layer
    from core.paint.layers import LayerStack
    stack = LayerStack(1024)
    import_image_layer(stack, p)
    return stack.composite()


def _read_recovery(p: Path):
    from core.paint.files import load_recovery
    return load_recovery(p).composite()


def _generate_model_bytes() -> bytes:
    """A small text-to-avatar model file (same format and loader as resources/models/generate.pt)."""
    import torch

    from core.generate.attributes import SCALARS
    from core.generate.model import COND_DIM, IDENTITY_DIM, Denoiser, state_half

    torch.manual_seed(0)
    n1, n2 = Denoiser(IDENTITY_DIM, COND_DIM, 8, 1, 50), Denoiser(20, COND_DIM + IDENTITY_DIM, 8, 1, 50)
    blob = {"format": "likeness-generate-v1", "net1": state_half(n1), "net2": state_half(n2),
            "scale_quantiles": torch.sort(torch.randn(9, len(SCALARS)), 0).values,
            "extras_mean": torch.zeros(15), "extras_std": torch.ones(15),
            "meta": json.dumps({"net1": n1.config, "net2": n2.config, "attributes": list(SCALARS),
                                "schedule_steps": 50}),
            "ridge": torch.zeros(385, 67)}
    buf = io.BytesIO()
    torch.save(blob, buf)
    return buf.getvalue()


def _read_generate_model(p: Path):
    from core.generate.generator import load_model_file
    return load_model_file(p)


def _prompt_suite_bytes() -> list[bytes]:
    from core.generate.evaluate import SUITE
    lines = SUITE.read_bytes().splitlines(keepends=True)
    return [b"".join(lines[:12]), b"".join(lines[:1] + lines[-6:])]


def _read_prompt_suite(p: Path):
    from core.generate.evaluate import load_suite
    return load_suite(p)


def _detector_bytes() -> list[bytes]:
    from core.fer.detector import FaceDetNet, save_detector

    with tempfile.TemporaryDirectory() as d:
        save_detector(FaceDetNet("vss", width=(4, 8, 8, 8, 8), head=8), Path(d) / "det.pt", {"note": "fuzz"})
        return [(Path(d) / "det.pt").read_bytes()]


def _read_detector(p: Path):
    from core.fer.detector import load_detector
    return load_detector(p)


def _detection_labels_bytes() -> list[bytes]:
    return [b"file,label,x,y,w,h,source\n000000.jpg,happy,10.0,12.5,40.0,45.0,fer2013\n"
            b"000000.jpg,sad,100,80,60,70,avatar\n"]


def _read_detection_labels(p: Path):
    """A detection set is a folder: labels.csv beside images/ holding the one image it names."""
    import shutil

    from core.fer.detdata import read_detection_set
    folder = p.parent / f"{p.stem}_set"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "images" / "000000.jpg").write_bytes(b"")
    shutil.copyfile(p, folder / "labels.csv")
    try:
        return read_detection_set(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _shipped(name: str) -> Callable[[], list[bytes]]:
    """A shipped resource file as the sample (our own derived data, in the repository)."""
    from core.paths import MODELS_DIR
    return lambda: [(MODELS_DIR / name).read_bytes()]


def _errors(spec: str) -> tuple[type, ...]:
    import importlib
    mod, name = spec.rsplit(".", 1)
    return (getattr(importlib.import_module(mod), name),)


@dataclass(frozen=True)
class Reader:
    name: str
    suffix: str
    samples: Callable[[], list[bytes]]
    read: Callable[[Path], object]
    error: str          # the error type the reader may raise, "module.Class"
    kind: str           # "zip", "image", "psd", "json", "jsonl", "csv", "text", "binary": which structured
                        # mutations apply


READERS: dict[str, Reader] = {r.name: r for r in (
    Reader("project", ".likeness", lambda: [_project_bytes(2), _project_bytes(1)], _read_project,
           "core.project.ProjectError", "zip"),
    Reader("photo", ".jpg", lambda: [_image_bytes("JPEG"), _image_bytes("PNG")], _read_photo,
           "core.fitting.photo.PhotoError", "image"),
    Reader("pts", ".pts", lambda: [_pts_bytes()], _read_pts, "builtins.ValueError", "text"),
    Reader("face_model", ".pt", lambda: [_face_model_bytes()], _read_face_model,
           "core.facemodel.model.ModelLoadError", "zip"),
    Reader("fer_model", ".pt", lambda: [_fer_model_bytes()], _read_fer_model, "builtins.ValueError", "zip"),
    Reader("video", ".avi", lambda: [_video_bytes()], _read_video,
           "core.video.sources.VideoSourceError", "binary"),
    Reader("correspondence", ".npz", _shipped("landmark_correspondence.npz"), _read_correspondence,
           "builtins.ValueError", "zip"),
    Reader("calibration68", ".npz", _shipped("landmarks68_calibration.npz"), _read_calibration68,
           "builtins.ValueError", "zip"),
    Reader("appearance_model", ".npz", _shipped("appearance.npz"), _read_appearance,
           "core.appearance.model.AppearanceModelError", "zip"),
    # the painting core's files (core/paint): added after the others so their seeds stay put
    Reader("paint_project", ".likeness", lambda: [_project_bytes(3)], _read_paint_project,
           "core.project.ProjectError", "zip"),
    Reader("psd", ".psd", _psd_bytes, _read_psd, "core.paint.errors.PaintError", "psd"),
    Reader("layer_image", ".png", _layer_image_bytes, _read_layer_image, "core.paint.errors.PaintError",
           "image"),
    Reader("paint_recovery", ".zip", lambda: [_recovery_bytes()], _read_recovery,
           "core.paint.errors.PaintError", "zip"),
    # animation clips (core/animation): a clip file and a format-4 project with clips
    Reader("clip", ".json", _clip_bytes, _read_clip, "core.animation.files.ClipError", "json"),
    Reader("clip_project", ".likeness", _clip_project_bytes, _read_clip_project,
           "core.project.ProjectError", "zip"),
    # batch work (core/batch): input manifests (CSV, JSONL) and an output folder's results manifest
    Reader("batch_manifest_csv", ".csv", lambda: _batch_manifest_bytes("csv"), _read_batch_manifest,
           "core.batch.inputs.ManifestError", "csv"),
    Reader("batch_manifest_jsonl", ".jsonl", lambda: _batch_manifest_bytes("jsonl"), _read_batch_manifest,
           "core.batch.inputs.ManifestError", "jsonl"),
    Reader("batch_results", ".jsonl", _batch_results_bytes, _read_batch_results,
           "core.batch.results.ResultsError", "jsonl"),
    # text to avatar (core/generate): the model file and an eval-generate prompt suite
    Reader("generate_model", ".pt", lambda: [_generate_model_bytes()], _read_generate_model,
           "core.generate.generator.GenerateModelError", "zip"),
    Reader("prompt_suite", ".tsv", _prompt_suite_bytes, _read_prompt_suite, "builtins.ValueError", "text"),
    # the listener's weights (core/listener)
    Reader("listener_model", ".pt", _shipped("listener.pt"), _read_listener_model,
           "core.listener.generate.ListenerModelError", "zip"),
    # expression captions (core/caption): eval-caption's reference events
    Reader("caption_refs", ".json", _caption_refs_bytes, _read_caption_refs,
           "core.caption.evaluate.RefsError", "json"),
    # the one-stage face + expression detector (core/fer/detector) and eval-detect's set labels
    Reader("fer_detector", ".pt", _detector_bytes, _read_detector, "core.fer.detector.DetectorError", "zip"),
    Reader("detection_set_labels", ".csv", _detection_labels_bytes, _read_detection_labels,
           "core.fer.detdata.DetSetError", "csv"),
)}
