"""Mutation fuzzing of every reader of user files (issue 30).

Each reader gets valid samples made here (small, our own data), mutated by seeded byte-level and
format-aware mutations (zip members dropped, garbled or inflated, JSON fields retyped, npy and
image headers declaring huge sizes). A case passes when the reader returns data or raises its
module's own error type with a message; anything else is a crash. Cases run in worker processes
with a time limit per case (a hang kills and replaces the worker) and an address-space cap (a
blow-up from a declared size becomes MemoryError, reported as "memory").

Readers: projects (formats 1-3, paint/ folder), photos, .pts, face and FER weights, videos,
landmark tables, the appearance model, the painting core's PSD, layer image and recovery
files, animation clips (clip files, projects with clips), the listener's weights and caption references. Used by tests/test_fuzz.py (a few dozen cases per reader, fixed seeds) and bench/fuzz.py (10,000).
"""
from __future__ import annotations

import io
import json
import multiprocessing as mp
import os
import resource
import struct
import tempfile
import time
import traceback
import zipfile
import zlib
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Callable

import numpy as np

OUTCOMES = ("ok", "error", "crash", "hang", "memory")
CASE_SECONDS = 20.0          # a case taking longer is a hang (generous: the machine may be busy)
MEMORY_HEADROOM = 3 << 30    # address space a worker may add on top of what its imports took


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
)}


# --- mutations --------------------------------------------------------------------------------

_INTERESTING = (0, 1, 0x7F, 0x80, 0xFF)
_BIG = (0x7FFFFFFF, 0xFFFFFFFF, 1 << 20, 65535)


def _bytes_mutation(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    b = bytearray(data)
    n = len(b)
    k = int(rng.integers(7))
    if n == 0:
        return bytes(rng.integers(0, 256, 16, dtype=np.uint8)), "random"
    if k == 0:
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(n))
            b[i] ^= 1 << int(rng.integers(8))
        return bytes(b), "bitflip"
    if k == 1:
        for _ in range(int(rng.integers(1, 5))):
            b[int(rng.integers(n))] = _INTERESTING[int(rng.integers(len(_INTERESTING)))]
        return bytes(b), "bytes"
    if k == 2:
        return bytes(b[:int(rng.integers(n))]), "truncate"
    if k == 3:
        i, m = int(rng.integers(n)), int(rng.integers(1, 64))
        b[i:i + m] = rng.integers(0, 256, m, dtype=np.uint8).tobytes()
        return bytes(b), "overwrite"
    if k == 4:
        i, m = int(rng.integers(n)), int(rng.integers(1, 256))
        del b[i:i + m]
        return bytes(b), "delete"
    if k == 5:
        i = int(rng.integers(n))
        return bytes(b[:i] + rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
                     + b[i:]), "insert"
    i = int(rng.integers(max(n - 4, 1)))
    b[i:i + 4] = struct.pack("<I", _BIG[int(rng.integers(len(_BIG)))])
    return bytes(b), "int32"


def _random_json(rng: np.random.Generator, depth: int = 0):
    k = int(rng.integers(9 if depth < 3 else 7))
    if k == 7:
        return [_random_json(rng, depth + 1) for _ in range(int(rng.integers(3)))]
    if k == 8:
        return {"k": _random_json(rng, depth + 1)}
    return (None, True, 1.5, -7, 10 ** 30, "x" * int(rng.integers(0, 300)), float("nan"))[k]


def _json_mutation(text: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    try:
        m = json.loads(text)
    except (ValueError, RecursionError):   # not JSON (any more): bytes it is
        return _bytes_mutation(text, rng)
    k = int(rng.integers(5))
    if not isinstance(m, dict) or not m:
        return json.dumps(_random_json(rng)).encode(), "json-replace"
    key = list(m)[int(rng.integers(len(m)))]
    if k == 0:
        m[key] = _random_json(rng)
        what = "json-retype"
    elif k == 1:
        del m[key]
        what = "json-drop"
    elif k == 2 and isinstance(m[key], dict) and m[key]:
        sub = list(m[key])[int(rng.integers(len(m[key])))]
        m[key][sub] = _random_json(rng)
        what = "json-retype-inner"
    elif k == 2 and isinstance(m[key], list) and m[key] and isinstance(m[key][0], dict):
        entry = m[key][int(rng.integers(len(m[key])))]   # e.g. one paint layer of layers.json
        if entry and rng.integers(3):
            entry[list(entry)[int(rng.integers(len(entry)))]] = _random_json(rng)
        else:
            m[key].append(_random_json(rng))
        what = "json-retype-entry"
    elif k == 3:
        return (b"[" * 100000 + b"]" * 100000), "json-deep"
    else:
        m[key] = "\ud800" if rng.integers(2) else "__HUGE__"
        what = "json-huge"
    try:   # a 5000-digit number, beyond Python's int parsing limit
        return json.dumps(m).replace('"__HUGE__"', "9" * 5000).encode("utf-8", "surrogatepass"), what
    except (ValueError, TypeError):
        return json.dumps(str(m)).encode(), what


def _jsonl_mutation(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """One line of a JSON-lines file mutated as JSON (or a line dropped, doubled, cut)."""
    lines = data.split(b"\n")
    i = int(rng.integers(max(1, len(lines) - 1)))
    k = int(rng.integers(4))
    if k == 0:
        lines[i], what = _json_mutation(lines[i], rng)
        return b"\n".join(lines), f"jsonl-{what}"
    if k == 1:
        lines.insert(i, lines[i])
        return b"\n".join(lines), "jsonl-duplicate-line"
    if k == 2:
        lines[i] = lines[i][:int(rng.integers(len(lines[i]) + 1))]
        return b"\n".join(lines), "jsonl-cut-line"
    return b"\n".join(lines[:i] + lines[i + 1:]), "jsonl-drop-line"


def _csv_mutation(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """A CSV cell replaced by something a hand-edited manifest may hold, or the rows reshaped."""
    lines = data.split(b"\n")
    i = int(rng.integers(max(1, len(lines) - 1)))
    cells = lines[i].split(b",")
    j = int(rng.integers(len(cells)))
    junk = [b'"', b'"unterminated', b"9" * 5000, b"nan", b"-1e309", b"1.5", b"\x00", b"\xff\xfe", b"a,b,c,d,e,f,g,h,i",
            b"x" * 70000, b"../../etc/passwd", b"", b"true", b"\r"]
    k = int(rng.integers(3))
    if k == 0:
        cells[j] = junk[int(rng.integers(len(junk)))]
        lines[i] = b",".join(cells)
        return b"\n".join(lines), f"csv-cell-{j}"
    if k == 1:
        lines.insert(i, lines[i])
        return b"\n".join(lines), "csv-duplicate-row"
    return b"\n".join(lines[:i] + lines[i + 1:]), "csv-drop-row"


def _npy_mutation(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    shapes = [b"(100000000000,)", b"(2000000000, 2000000000)", b"(-1,)", b"()", b"(3,", b"(0,)"]
    dtypes = [b"'|O'", b"'<c16'", b"'>f8'", b"'<U9'", b"'V8'", b"'<f2'"]
    head_end = data.find(b"\n")
    head = data[:head_end]
    if rng.integers(2) and b"'shape': " in head:
        i = head.index(b"'shape': ") + 9
        j = head.index(b")", i) + 1
        head = head[:i] + shapes[int(rng.integers(len(shapes)))] + head[j:]
        what = "npy-shape"
    elif b"'descr': " in head:
        i = head.index(b"'descr': ") + 9
        j = head.index(b",", i)
        head = head[:i] + dtypes[int(rng.integers(len(dtypes)))] + head[j:]
        what = "npy-dtype"
    else:
        return _bytes_mutation(data, rng)
    body = head[10:]
    return data[:8] + struct.pack("<H", len(body) + 1) + body + data[head_end:], what


def _png_dims(data: bytes, rng) -> tuple[bytes, str]:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return _bytes_mutation(data, rng)
    w, h = [(100000, 100000), (1, 10 ** 8), (0, 0), (65535, 65535)][int(rng.integers(4))]
    ihdr = b"IHDR" + struct.pack(">II", w, h) + data[24:29]
    return data[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + data[33:], "png-dims"


def _jpeg_dims(data: bytes, rng) -> tuple[bytes, str]:
    i = data.find(b"\xff\xc0")
    if i < 0:
        return _bytes_mutation(data, rng)
    h, w = [(65535, 65535), (0, 0), (1, 65535)][int(rng.integers(3))]
    return data[:i + 5] + struct.pack(">HH", h, w) + data[i + 9:], "jpeg-dims"


def _psd_header(data: bytes, rng) -> tuple[bytes, str]:
    """A PSD header declaring other dimensions, depth, channels or colour mode (big-endian:
    signature 4, version 2, reserved 6, channels 2, height 4, width 4, depth 2, mode 2)."""
    if data[:4] != b"8BPS" or len(data) < 26:
        return _bytes_mutation(data, rng)
    b = bytearray(data)
    k = int(rng.integers(4))
    if k == 0:
        h, w = [(30000, 30000), (1, 30000), (0, 0), (16384, 16384), (300000, 300000)][int(rng.integers(5))]
        b[14:22] = struct.pack(">II", h, w)
        return bytes(b), f"psd-dims {w}x{h}"
    if k == 1:
        b[22:24] = struct.pack(">H", (1, 16, 32, 0, 255)[int(rng.integers(5))])
        return bytes(b), "psd-depth"
    if k == 2:
        b[12:14] = struct.pack(">H", (0, 1, 56, 65535)[int(rng.integers(4))])
        return bytes(b), "psd-channels"
    b[24:26] = struct.pack(">H", (0, 1, 2, 4, 7, 9, 99)[int(rng.integers(7))])
    return bytes(b), "psd-mode"


_BOMB: dict[int, tuple[bytes, int]] = {}


def _bomb(size: int = 256 << 20) -> tuple[bytes, int]:
    """A deflate stream of `size` zero bytes (about 250 KB for 256 MB) and its CRC, made once."""
    if size not in _BOMB:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        chunk = bytes(1 << 20)
        crc = 0
        for _ in range(size >> 20):
            crc = zlib.crc32(chunk, crc)
        _BOMB[size] = (b"".join(c.compress(chunk) for _ in range(size >> 20)) + c.flush(), crc)
    return _BOMB[size]


def _zip_mutation(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    try:
        src = zipfile.ZipFile(io.BytesIO(data))
        if sum(i.file_size for i in src.infolist()) > 64 << 20:   # already a bomb: keep it cheap
            return _bytes_mutation(data, rng)
        items = [(i, src.read(i)) for i in src.infolist()]
    except Exception:
        return _bytes_mutation(data, rng)
    if not items:          # an empty archive (a mutant of a mutant): nothing to pick from
        return _bytes_mutation(data, rng)
    k = int(rng.integers(7))
    j = int(rng.integers(len(items)))
    info, payload = items[j]
    name = info.filename
    if k == 0:
        del items[j]
        what = f"zip-drop {name}"
    elif k == 1:
        if name.endswith(".json"):
            payload, what = _json_mutation(payload, rng)
        elif name.endswith(".npy"):
            payload, what = _npy_mutation(payload, rng)
        elif name.endswith(".png"):
            payload, what = _png_dims(payload, rng)
        else:
            payload, what = _bytes_mutation(payload, rng)
        items[j] = (info, payload)
        what = f"zip-member {name}: {what}"
    elif k == 2:
        items[j] = (info, _bytes_mutation(payload, rng)[0])
        what = f"zip-garble {name}"
    elif k == 3:
        items.append((zipfile.ZipInfo(name + "x" if rng.integers(2) else name), b"dup"))
        what = "zip-extra"
    elif k == 4:   # a member whose declared and real size is huge: a zip bomb
        out = _write_zip(items)
        return _add_bomb(out, name), f"zip-bomb {name}"
    elif k == 5:   # the directory declares a huge size for a small member
        out = bytearray(_write_zip(items))
        cd = out.rfind(b"PK\x01\x02")
        if cd >= 0:
            out[cd + 24:cd + 28] = struct.pack("<I", 0xFFFFFFF0)
        return bytes(out), "zip-size-field"
    else:
        return _bytes_mutation(data, rng)[0], "zip-bytes"
    return _write_zip(items), what


def _write_zip(items) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, payload in items:
            zi = zipfile.ZipInfo(info.filename, date_time=(2026, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, payload)
    return out.getvalue()


def _add_bomb(data: bytes, name: str, size: int = 256 << 20) -> bytes:
    """Replace member `name` by `size` zero bytes (deflated: ~1/1000 of that), written by hand so
    the stream is made once."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    central = []
    for info in src.infolist():
        if info.filename == name:
            (comp, ucrc), usize = _bomb(size), size
        else:
            raw = src.read(info)
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            comp, usize, ucrc = c.compress(raw) + c.flush(), len(raw), zlib.crc32(raw)
        fn = info.filename.encode()
        off = out.tell()
        out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, ucrc, len(comp), usize,
                              len(fn), 0) + fn + comp)
        central.append(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, ucrc,
                                   len(comp), usize, len(fn), 0, 0, 0, 0, 0, off) + fn)
    cd_off = out.tell()
    cd = b"".join(central)
    out.write(cd + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(central), len(central), len(cd),
                               cd_off, 0))
    return out.getvalue()


def mutate(reader: Reader, sample: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """One mutant of `sample` and a short name for what was done."""
    structured = rng.random() < 0.6
    if structured and reader.kind == "zip":
        return _zip_mutation(sample, rng)
    if structured and reader.kind == "psd" and rng.random() < 0.5:   # else bytes: the layer records
        return _psd_header(sample, rng)
    if structured and reader.kind == "image":
        return (_png_dims if sample[:4] == b"\x89PNG" else _jpeg_dims)(sample, rng)
    if structured and reader.kind == "json":
        return _json_mutation(sample, rng)
    if structured and reader.kind == "jsonl":
        return _jsonl_mutation(sample, rng)
    if structured and reader.kind == "csv":
        return _csv_mutation(sample, rng)
    return _bytes_mutation(sample, rng)


def make_case(reader: Reader, samples: list[bytes], seed: int, index: int) -> tuple[bytes, str]:
    rng = np.random.default_rng([seed, list(READERS).index(reader.name), index])
    sample = samples[int(rng.integers(len(samples)))]
    data, what = mutate(reader, sample, rng)
    if rng.random() < 0.15:      # sometimes two mutations stacked
        data, what2 = mutate(reader, data, rng)
        what = f"{what} + {what2}"
    return data, what


# --- running cases ----------------------------------------------------------------------------

def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _worker(conn, headroom: int) -> None:
    """Runs cases sent as (reader, seed, index, save_dir) and answers (outcome, what, detail)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # Decoders (FFmpeg, libjpeg) print to the C stderr on every damaged file: keep it quiet.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    import warnings
    warnings.simplefilter("ignore")
    import torch
    torch.set_num_threads(1)
    import cv2
    cv2.setNumThreads(1)
    tmp = Path(tempfile.mkdtemp(prefix="likeness-fuzz-"))
    samples: dict[str, list[bytes]] = {}
    for name, r in READERS.items():   # load every reader's modules before capping memory
        samples[name] = r.samples()
        _run_one(r, samples[name][0], tmp)
    _bomb()
    limit = _address_space() + headroom
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn.send("ready")
    while True:
        msg = conn.recv()
        if msg is None:
            break
        name, seed, index = msg
        r = READERS[name]
        what = "?"
        try:
            data, what = make_case(r, samples[name], seed, index)
            outcome, detail = _run_one(r, data, tmp)
        except BaseException as exc:   # noqa: BLE001 - the harness itself must survive anything
            outcome, detail = "crash", f"harness: {type(exc).__name__}: {exc}"
        conn.send((outcome, what, detail))


def _run_one(r: Reader, data: bytes, tmp: Path) -> tuple[str, str]:
    p = tmp / f"case{r.suffix}"
    p.write_bytes(data)
    allowed = _errors(r.error)
    try:
        r.read(p)
        return "ok", ""
    except MemoryError:
        return "memory", "MemoryError"
    except allowed as exc:
        msg = str(exc).strip()
        if len(msg) < 10:
            return "crash", f"{type(exc).__name__} without a message: {msg!r}"
        return "error", msg[:200]
    except Exception as exc:
        tb = traceback.extract_tb(exc.__traceback__)
        where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
        return "crash", f"{type(exc).__name__} at {where}: {str(exc)[:200]}"


@dataclass
class Result:
    reader: str
    index: int
    outcome: str
    what: str
    detail: str
    seconds: float


class Pool:
    """Worker processes with a per-case deadline; a worker that misses it is killed and replaced."""

    def __init__(self, workers: int = 2, case_seconds: float = CASE_SECONDS,
                 headroom: int = MEMORY_HEADROOM):
        self.ctx = mp.get_context("spawn")
        self.case_seconds, self.headroom = case_seconds, headroom
        self.workers = [self._start() for _ in range(workers)]

    def _start(self):
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child, self.headroom), daemon=True)
        proc.start()
        child.close()
        if not parent.poll(300) or parent.recv() != "ready":
            proc.kill()
            raise RuntimeError("fuzz worker did not start")
        return proc, parent

    def run(self, cases: list[tuple[str, int, int]],
            progress: Callable[[Result], None] = lambda r: None) -> list[Result]:
        todo = list(cases)[::-1]
        busy: dict[int, tuple[tuple, float]] = {}
        results: list[Result] = []
        while todo or busy:
            for w, (proc, conn) in enumerate(self.workers):
                if w not in busy and todo:
                    case = todo.pop()
                    conn.send(case)
                    busy[w] = (case, time.monotonic())
            ready = wait([self.workers[w][1] for w in busy], timeout=0.5)
            now = time.monotonic()
            for w in list(busy):
                proc, conn = self.workers[w]
                case, t0 = busy[w]
                res = None
                if conn in ready:
                    try:
                        outcome, what, detail = conn.recv()
                        res = Result(case[0], case[2], outcome, what, detail, now - t0)
                    except (EOFError, OSError):   # the worker died (a native crash, the memory cap)
                        res = Result(case[0], case[2], "crash", "?", f"worker died (exit {proc.exitcode})",
                                     now - t0)
                        self._replace(w)
                elif now - t0 > self.case_seconds:
                    res = Result(case[0], case[2], "hang", "?", f"no answer in {self.case_seconds:.0f} s",
                                 now - t0)
                    self._replace(w)
                if res is not None:
                    del busy[w]
                    results.append(res)
                    progress(res)
        return results

    def _replace(self, w: int) -> None:
        proc, conn = self.workers[w]
        proc.kill()
        proc.join(10)
        self.workers[w] = self._start()

    def close(self) -> None:
        for proc, conn in self.workers:
            try:
                conn.send(None)
            except OSError:
                pass
            proc.join(5)
            if proc.is_alive():
                proc.kill()

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def mutant(reader: str, seed: int, index: int) -> tuple[bytes, str]:
    """The exact bytes of one case, to save a crash as a regression fixture."""
    r = READERS[reader]
    return make_case(r, r.samples(), seed, index)


def summarize(results: list[Result]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in results:
        out.setdefault(r.reader, {o: 0 for o in OUTCOMES})[r.outcome] += 1
    return out
