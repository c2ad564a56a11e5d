"""Layered PSD export and import (psd-tools), Photoshop's exchange format for painters.

Export writes the avatar's base texture as the bottom layer (named BASE_NAME, so an import
can leave it out: the base stays the avatar's appearance) and every paint layer above it with
its name, order, opacity, blend mode, hidden flag and pixels (cropped to the painted tiles).
Layer masks are not written (psd-tools masks are not round-trip safe); the layer's pixels are.
Import accepts 8-bit RGB documents; anything else (16/32-bit, CMYK, greyscale, too large)
is refused with a PaintError before the stack changes.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import PaintError
from .files import MAX_IMAGE_PIXELS, check_memory, fit_to_stack, write_atomic
from .layers import Layer, LayerStack
from .tiles import TiledImage

BASE_NAME = "Base (appearance)"
_TO_PSD = {"normal": "NORMAL", "multiply": "MULTIPLY", "screen": "SCREEN", "overlay": "OVERLAY",
           "soft light": "SOFT_LIGHT", "colour": "COLOR"}


def _psd_tools():
    try:
        import psd_tools
        from psd_tools.constants import BlendMode
        return psd_tools, BlendMode
    except ImportError:
        raise PaintError("PSD files need the psd-tools package (pip install psd-tools); "
                         "it is not installed.") from None


def export_psd(stack: LayerStack, path: str | os.PathLike, include_base: bool = True) -> Path:
    """Write the stack as a layered 8-bit RGB PSD (atomically). Returns the path."""
    psd_tools, BlendMode = _psd_tools()
    s = stack.size
    doc = psd_tools.PSDImage.new("RGB", (s, s), depth=8)
    if include_base:
        base = np.concatenate([stack.base, np.full((s, s, 1), 255, np.uint8)], axis=2)
        doc.create_pixel_layer_from_array(base, name=BASE_NAME)
    for layer in stack.layers:
        b = layer.pixels.bounds() or (0, 1, 0, 1)   # an empty layer keeps one clear texel
        arr = layer.pixels.read(b)
        psd_layer = doc.create_pixel_layer_from_array(
            arr, name=layer.name, top=b[0], left=b[2], opacity=int(round(layer.opacity * 255)),
            blend_mode=getattr(BlendMode, _TO_PSD[layer.blend]))
        psd_layer.visible = layer.visible
    _set_preview(doc, stack)
    return write_atomic(path, lambda f: doc.save(f))


def _set_preview(doc, stack: LayerStack) -> None:
    """Store our own composite as the merged image viewers show: psd-tools would otherwise
    recomposite every layer in Python on save (seconds at 2048^2)."""
    try:
        from psd_tools.api import numpy_io
        rgb = stack.composite().astype(np.float32) / 255
        alpha = np.ones(rgb.shape[:2] + (1,), np.float32)
        doc._record.image_data.set_data(numpy_io.encode_image_data(doc, rgb, alpha), doc._record.header)
        doc._updated = False
    except (ImportError, AttributeError):
        pass   # another psd-tools version: save() composites the preview itself (slower)


def read_psd(path: str | os.PathLike, size: int) -> tuple[list[Layer], list[str]]:
    """The paint layers of a PSD at size x size (bottom first) and notices for the user.
    Raises PaintError for damaged or unsupported documents."""
    psd_tools, BlendMode = _psd_tools()
    path = Path(path)
    if not path.is_file():
        raise PaintError(f"{path} does not exist.")
    try:
        doc = psd_tools.PSDImage.open(path)
    except Exception as exc:   # psd-tools raises many types on damaged files
        raise PaintError(f"{path.name} is damaged or not a Photoshop file ({type(exc).__name__}: {exc}).") from None
    mode = getattr(doc.color_mode, "name", str(doc.color_mode))
    if mode != "RGB":
        raise PaintError(f"{path.name} is a {mode} document; Likeness imports RGB PSD files only "
                         f"(convert it to RGB in your image editor).")
    if doc.depth != 8:
        raise PaintError(f"{path.name} has {doc.depth} bits per channel; Likeness imports 8-bit "
                         f"PSD files only (convert it to 8 bits per channel).")
    w, h = doc.width, doc.height
    if w * h > MAX_IMAGE_PIXELS:
        raise PaintError(f"{path.name} is {w}x{h} pixels, too large to paint with.")
    from_psd = {getattr(BlendMode, v): k for k, v in _TO_PSD.items()}
    notices: list[str] = []
    items = []
    skipped: dict[str, int] = {}
    for layer in doc.descendants():
        if layer.is_group():
            skipped["groups (their layers were imported without the group)"] = 1
            continue
        if layer.kind not in ("pixel", "type", "shape", "smartobject"):
            skipped[f"{layer.kind} layers"] = skipped.get(f"{layer.kind} layers", 0) + 1
            continue
        items.append(layer)
    if items and items[0].name == BASE_NAME:
        items = items[1:]
        notices.append(f"The layer '{BASE_NAME}' was left out: the avatar's appearance stays the base.")
    check_memory(len(items) * (w * h + size * size) * 4 * 2, f"Importing {path.name}")
    layers: list[Layer] = []
    for pl in items:
        try:
            img = pl.topil() if pl.kind == "pixel" else pl.composite()
        except Exception as exc:
            raise PaintError(f"{path.name} is damaged: the layer '{pl.name}' cannot be read ({exc}).") from None
        canvas = np.zeros((h, w, 4), np.uint8)
        if img is not None and pl.width > 0 and pl.height > 0:
            arr = np.asarray(img.convert("RGBA"), np.uint8)
            top, left = pl.top, pl.left
            y0, x0 = max(0, top), max(0, left)
            y1, x1 = min(h, top + arr.shape[0]), min(w, left + arr.shape[1])
            if y0 < y1 and x0 < x1:
                canvas[y0:y1, x0:x1] = arr[y0 - top:y1 - top, x0 - left:x1 - left]
        px, note = fit_to_stack(canvas, size, f"The layer '{pl.name}'")
        if note and not any("resampled" in n for n in notices):
            notices.append(f"{path.name} is {w}x{h}; its layers were resampled to {size}x{size}.")
        blend = from_psd.get(pl.blend_mode)
        if blend is None:
            notices.append(f"The layer '{pl.name}' uses the blend mode {pl.blend_mode.name.lower()}, "
                           f"which Likeness does not have; it was imported as normal.")
            blend = "normal"
        if pl.has_mask():
            notices.append(f"The mask of the layer '{pl.name}' was not imported.")
        layers.append(Layer(pl.name, TiledImage.from_array(px), pl.opacity / 255.0, blend, bool(pl.visible)))
    for what, n in skipped.items():
        notices.append(f"{path.name} has {what}, which Likeness does not import." if n == 1 or "groups" in what
                       else f"{path.name} has {n} {what}, which Likeness does not import.")
    if not layers:
        raise PaintError(f"{path.name} has no pixel layers to import.")
    return layers, notices


def import_psd(stack: LayerStack, path: str | os.PathLike) -> tuple[list[Layer], list[str]]:
    """Add a PSD's layers on top of the stack as one undoable step; (layers, notices)."""
    layers, notices = read_psd(path, stack.size)
    stack.insert_layers(layers, f"Import {Path(path).name}")
    return layers, notices
