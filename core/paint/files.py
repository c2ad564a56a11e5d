"""Paint files: images in and out (PNG/JPEG as a layer, each layer as a PNG with alpha, the
flattened texture) and the paint/ folder of a .likeness project (layers.json + one PNG per
layer, plus one per layer mask).

Every reader refuses damaged or unsuitable input with a PaintError whose message is a
sentence for the user, before anything in the stack changes. Files are written to a temporary
name beside the target and os.replace()d, so a crash never leaves half a file.
"""
from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .. import atomic
from .blend import normalise_mode
from .errors import PaintError
from .layers import RESOLUTIONS, Layer, LayerStack, resample
from .tiles import TiledImage

MAX_IMAGE_PIXELS = 16384 * 16384
PAINT_FORMAT = "likeness-paint"
PAINT_VERSION = 1
PAINT_DIR = "paint/"
LAYERS_JSON = PAINT_DIR + "layers.json"


# ---------------------------------------------------------------------- memory, atomic writes
def available_memory() -> int:
    """Bytes the system says are available (MemAvailable), or a generous guess elsewhere."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


def check_memory(nbytes: int, what: str) -> None:
    if nbytes > 0.8 * available_memory():
        raise PaintError(f"{what} needs about {nbytes / 2**30:.1f} GiB of memory, more than this "
                         f"computer has free ({available_memory() / 2**30:.1f} GiB); nothing was changed.")


def write_atomic(path: str | os.PathLike, data: bytes | Callable[[io.BufferedWriter], None]) -> Path:
    """core.atomic.write_atomic with the painting core's error type."""
    return atomic.write_atomic(path, data, PaintError)


# ---------------------------------------------------------------------- PNG bytes
def png_bytes(image: np.ndarray, level: int | None = None) -> bytes:
    """RGB or RGBA uint8 -> PNG. level None: OpenCV's speed-tuned defaults (the Sub filter on
    every row, zlib level 1, run-length strategy): a noisy 2048^2 RGBA layer in about 0.2 s
    of CPU and a little smaller than zlib level 1 with libpng's adaptive filters, which costs
    2.5x the time (an empty layer: 0.04 vs 0.14 s). Project saves and autosaves use it."""
    img = np.asarray(image, np.uint8)
    code = cv2.COLOR_RGBA2BGRA if img.ndim == 3 and img.shape[2] == 4 else cv2.COLOR_RGB2BGR
    if img.ndim == 3:
        img = cv2.cvtColor(img, code)
    params = [] if level is None else [cv2.IMWRITE_PNG_COMPRESSION, int(level)]
    ok, buf = cv2.imencode(".png", img, params)
    if not ok:
        raise PaintError("Cannot encode the image as PNG.")
    return buf.tobytes()


def decode_image(data: bytes, what: str) -> np.ndarray:
    """Image bytes (PNG, JPEG, anything Pillow reads) -> RGBA uint8. PaintError if damaged,
    not an image, or too large."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > MAX_IMAGE_PIXELS:
                raise PaintError(f"{what} is {w}x{h} pixels, too large to paint with "
                                 f"(at most {int(MAX_IMAGE_PIXELS ** 0.5)}^2).")
            check_memory(w * h * 8, f"Reading {what}")
            if im.mode in ("I;16", "I;16B", "I", "F"):
                # 16-bit greyscale: keep the top 8 bits rather than clipping to white.
                arr = np.asarray(im, np.float64)
                arr = np.clip(arr / (65535.0 if arr.max() > 255 else 255.0) * 255 + 0.5, 0, 255).astype(np.uint8)
                return np.dstack([arr] * 3 + [np.full_like(arr, 255)])
            return np.asarray(im.convert("RGBA"), np.uint8).copy()
    except PaintError:
        raise
    except UnidentifiedImageError:
        raise PaintError(f"{what} is not an image Likeness can read (PNG or JPEG expected).") from None
    except Exception as exc:   # Pillow raises many types for truncated or corrupt files
        raise PaintError(f"{what} is damaged and cannot be read ({exc}).") from None


def read_image(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise PaintError(f"{path} does not exist.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PaintError(f"Cannot read {path}: {exc.strerror or exc}") from exc
    return decode_image(data, path.name)


def fit_to_stack(image: np.ndarray, size: int, what: str) -> tuple[np.ndarray, str | None]:
    """Resample an image to size x size; the notice says so when it had to."""
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image, None
    note = f"{what} is {w}x{h}; it was resampled to the texture's {size}x{size}"
    if w != h:
        note += " (it is not square, so it was stretched)"
    return resample(image, size), note + "."


# ---------------------------------------------------------------------- layers in and out
def import_image_layer(stack: LayerStack, path: str | os.PathLike, name: str | None = None,
                       blend: str = "normal", opacity: float = 1.0) -> tuple[Layer, str | None]:
    """Add a PNG/JPEG as a new top layer (undoable). Returns (layer, notice or None)."""
    mode = normalise_mode(blend)
    img, note = fit_to_stack(read_image(path), stack.size, Path(path).name)
    layer = stack.add_layer(name or Path(path).stem, pixels=img, opacity=opacity, blend=mode)
    return layer, note


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "layer"


def export_layers(stack: LayerStack, directory: str | os.PathLike) -> list[Path]:
    """Each layer as an RGBA PNG, bottom first: NN_name.png. Returns the paths."""
    d = Path(directory)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PaintError(f"Cannot create the folder {d}: {exc.strerror or exc}") from exc
    return [write_atomic(d / f"{i:02d}_{safe_name(l.name)}.png", png_bytes(l.to_array()))
            for i, l in enumerate(stack.layers)]


def export_flattened(stack: LayerStack, path: str | os.PathLike) -> Path:
    """The flattened (padded) texture as an RGB PNG."""
    return write_atomic(path, png_bytes(stack.composite(), level=3))


# ---------------------------------------------------------------------- the project's paint/ folder
def paint_members(stack: LayerStack) -> dict[str, bytes]:
    """Zip members describing the stack: paint/layers.json and a PNG per layer (and mask)."""
    from concurrent.futures import ThreadPoolExecutor

    jobs: dict[str, Callable[[], np.ndarray]] = {}
    entries = []
    for i, layer in enumerate(stack.layers):
        file = f"{PAINT_DIR}layer_{i:03d}.png"
        jobs[file] = layer.to_array
        entry = {"name": layer.name, "file": file, "opacity": round(float(layer.opacity), 6),
                 "blend": layer.blend, "visible": layer.visible, "locked": layer.locked, "mask": None}
        if layer.mask is not None:
            entry["mask"] = f"{PAINT_DIR}mask_{i:03d}.png"
            jobs[entry["mask"]] = (lambda m=layer.mask: m)
        entries.append(entry)
    # PNG encoding releases the GIL: layers encode side by side.
    with ThreadPoolExecutor(max_workers=4) as pool:
        encoded = pool.map(lambda get: png_bytes(get()), jobs.values())
        members: dict[str, bytes] = dict(zip(jobs, encoded))
    doc = {"format": PAINT_FORMAT, "version": PAINT_VERSION, "size": stack.size,
           "padding": stack.padding, "layers": entries}   # layers bottom to top
    members[LAYERS_JSON] = json.dumps(doc, indent=2).encode("utf-8")
    return members


def read_paint(read: Callable[[str], bytes], where: str = "the project") -> LayerStack:
    """A LayerStack from a paint/ folder; `read(member)` returns a member's bytes (KeyError if
    missing). Raises PaintError saying what is damaged."""
    try:
        doc = json.loads(read(LAYERS_JSON).decode("utf-8"))
    except KeyError:
        raise PaintError(f"{where} is damaged: {LAYERS_JSON} is missing.") from None
    except (ValueError, RecursionError) as exc:   # bad UTF-8 or JSON, a 5000-digit number, too deep
        raise PaintError(f"{where} is damaged: {LAYERS_JSON} is not valid JSON "
                         f"({type(exc).__name__}: {str(exc)[:200]}).") from None
    if not isinstance(doc, dict) or doc.get("format") != PAINT_FORMAT:
        raise PaintError(f"{where} is damaged: {LAYERS_JSON} is not a Likeness paint description.")
    if not isinstance(doc.get("version"), int) or doc["version"] > PAINT_VERSION:
        raise PaintError(f"The paint layers in {where} were saved by a newer Likeness "
                         f"(paint format {doc.get('version')}); please update Likeness.")
    size = doc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size not in RESOLUTIONS:   # 1024.0 too
        raise PaintError(f"{where} is damaged: paint resolution {size!r} is not one of {RESOLUTIONS}.")
    entries = doc.get("layers")
    if not isinstance(entries, list):
        raise PaintError(f"{where} is damaged: {LAYERS_JSON} has no layer list.")
    check_memory(len(entries) * size * size * 5, f"Opening the {len(entries)} paint layers of {where}")
    padding = doc.get("padding", 4)
    if not isinstance(padding, int) or isinstance(padding, bool) or not 0 <= padding <= 64:
        raise PaintError(f"{where} is damaged: the paint padding {padding!r} is not a small whole number.")
    stack = LayerStack(size, padding=padding)
    parsed = []
    for e in entries:
        try:
            name, file = str(e["name"]), str(e["file"])
            opacity, blend = float(e.get("opacity", 1.0)), normalise_mode(e.get("blend", "normal"))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise PaintError(f"{where} is damaged: a paint layer entry is invalid ({exc}).") from None
        if not np.isfinite(opacity):
            raise PaintError(f"{where} is damaged: the paint layer '{name[:80]}' has opacity {opacity}.")
        parsed.append((name, file, opacity, blend, e))
    # Members are read here (zip access is not thread-safe), decoded side by side (cv2 releases the GIL).
    from concurrent.futures import ThreadPoolExecutor

    def decode(job: tuple[str, bytes, int]) -> np.ndarray:
        return _decode_png(job[1], job[0], where, size, job[2])
    jobs = []
    for name, file, opacity, blend, e in parsed:
        jobs.append((file, _member(read, file, where), 4))
        if e.get("mask"):
            jobs.append((str(e["mask"]), _member(read, str(e["mask"]), where), 1))
    with ThreadPoolExecutor(max_workers=4) as pool:
        # keyed by (member, channels): a damaged file may name one PNG as a layer and as a mask
        images = dict(zip([(j[0], j[2]) for j in jobs], pool.map(decode, jobs)))
    for name, file, opacity, blend, e in parsed:
        layer = Layer(name, TiledImage.from_array(images[file, 4]), float(np.clip(opacity, 0, 1)), blend,
                      bool(e.get("visible", True)), bool(e.get("locked", False)))
        if e.get("mask"):
            layer.mask = images[str(e["mask"]), 1]
        stack.layers.append(layer)   # not through history: opening is not an undoable step
    return stack


def _member(read: Callable[[str], bytes], member: str, where: str) -> bytes:
    try:
        return read(member)
    except KeyError:
        raise PaintError(f"{where} is damaged: the paint layer image {member} is missing.") from None


def _decode_png(data: bytes, member: str, where: str, size: int, channels: int) -> np.ndarray:
    # The IHDR size is checked before decoding, so a hostile file cannot make us allocate more.
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        if (w, h) != (size, size):
            raise PaintError(f"{where} is damaged: the paint layer image {member} is {w}x{h}, "
                             f"expected {size}x{size}.")
    buf = np.frombuffer(data, np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if img is None or img.dtype != np.uint8:
        raise PaintError(f"{where} is damaged: the paint layer image {member} is not a readable 8-bit PNG.")
    if channels == 1:
        img = img if img.ndim == 2 else img[..., 0]
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    else:
        raise PaintError(f"{where} is damaged: the paint layer image {member} has no alpha channel.")
    if img.shape[:2] != (size, size):
        raise PaintError(f"{where} is damaged: the paint layer image {member} is "
                         f"{img.shape[1]}x{img.shape[0]}, expected {size}x{size}.")
    return img


# ---------------------------------------------------------------------- recovery file
def save_recovery(stack: LayerStack, path: str | os.PathLike) -> Path:
    """Autosave: the stack's paint/ members in a zip, written atomically (a crash mid-write
    keeps the previous recovery file). Run it off the GUI thread on a snapshot of the layers
    (`Layer.copy()`), not on layers a stroke is writing."""
    import zipfile

    members = paint_members(stack)

    def write(f) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
    return write_atomic(path, write)


def load_recovery(path: str | os.PathLike) -> LayerStack:
    """The stack from a recovery file; PaintError if it is missing or damaged."""
    import zipfile

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            def read(name: str) -> bytes:
                info = zf.getinfo(name)   # KeyError when missing
                # the sizes a project allows its members (a 4096^2 layer PNG is < 128 MB)
                if info.file_size > (1 << 20 if name.endswith(".json") else 128 << 20):
                    raise PaintError(f"{path.name} is damaged: {name} claims {info.file_size} bytes.")
                return zf.read(info)
            return read_paint(read, path.name)
    except PaintError:
        raise
    except FileNotFoundError:
        raise PaintError(f"{path} does not exist.") from None
    except Exception as exc:   # bad zip directory, CRC, truncated stream
        raise PaintError(f"The recovery file {path.name} is damaged ({type(exc).__name__}: {exc}).") from None
