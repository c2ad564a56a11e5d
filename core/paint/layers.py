"""The layer stack: paint layers over the avatar's base texture, composited incrementally.

The base layer is not stored here: it is the avatar's appearance (the texture code decoded,
or a projected photo), handed in with `set_base` whenever it changes, so the appearance can
change under the paint. Layers are RGBA uint8 in sparse tiles (tiles.py). The composite is
cached and only dirty tiles are recomposited (plus seam padding around them), which is what
keeps a dab at 2048^2 with several layers within a frame.
"""
from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

from .blend import BLEND_MODES, composite_over, normalise_mode
from .errors import PaintError
from .history import History, OpStep
from .seams import MAX_PADDING, Padding
from .tiles import TILE, Rect, TiledImage, clip_rect, tile_rect

RESOLUTIONS = (1024, 2048, 4096)
_ids = itertools.count(1)


@dataclass(eq=False)
class Layer:
    """One paint layer. `mask` (size, size) uint8 or None scales the layer's alpha (255 = shown)."""
    name: str
    pixels: TiledImage
    opacity: float = 1.0
    blend: str = "normal"
    visible: bool = True
    locked: bool = False
    mask: np.ndarray | None = None
    id: int = field(default_factory=lambda: next(_ids))

    def copy(self, name: str | None = None) -> "Layer":
        return Layer(name or self.name, self.pixels.copy(), self.opacity, self.blend, self.visible,
                     self.locked, None if self.mask is None else self.mask.copy())

    def snapshot(self) -> "Layer":
        """The layer as it is now, for a reader on another thread (autosave): its tiles are
        shared copy-on-write (TiledImage.snapshot), its mask copied."""
        return Layer(self.name, self.pixels.snapshot(), self.opacity, self.blend, self.visible,
                     self.locked, None if self.mask is None else self.mask.copy())

    def to_array(self) -> np.ndarray:
        """(S, S, 4) RGBA uint8, straight alpha."""
        return self.pixels.to_array()

    @property
    def nbytes(self) -> int:
        return self.pixels.nbytes + (0 if self.mask is None else self.mask.nbytes)


def resample(image: np.ndarray, size: int) -> np.ndarray:
    """Square resample (area when shrinking, bilinear when growing)."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    shrink = image.shape[0] > size or image.shape[1] > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class LayerStack:
    """Layers bottom to top over a base texture, with history and a cached composite.

    size: 1024, 2048 or 4096. coverage: (size', size') bool of the UV islands (any size,
    resampled) for fills by island and seam padding; None: no padding, no island fill.
    """

    def __init__(self, size: int = 2048, base: np.ndarray | None = None,
                 coverage: np.ndarray | None = None, padding: int = 4,
                 history: History | None = None) -> None:
        if size not in RESOLUTIONS:
            raise PaintError(f"Texture resolution {size} is not supported; use {', '.join(map(str, RESOLUTIONS))}.")
        self.size = size
        self.layers: list[Layer] = []
        self.history = history or History()
        self.padding = int(np.clip(padding, 0, MAX_PADDING))
        self.listeners: list[Callable[[str], None]] = []   # "layers" or "pixels"
        self._n = size // TILE
        self._dirty = np.ones((self._n, self._n), bool)
        self._composite = np.zeros((size, size, 3), np.uint8)
        self._base = np.full((size, size, 3), 128, np.uint8)
        self._base_key: tuple | None = None
        self._below: tuple[int, TiledImage] | None = None   # see hold_below
        self.coverage: np.ndarray | None = None
        self.set_coverage(coverage)
        if base is not None:
            self.set_base(base)

    # ------------------------------------------------------------------ base, coverage
    def set_base(self, base: np.ndarray) -> bool:
        """The base texture (H, W, 3) uint8 (resampled to the stack size). Returns whether it
        changed: a CRC of its bytes (milliseconds) decides, so handing in the same texture on
        every frame costs no recomposite."""
        base = np.asarray(base)
        key = (base.shape, str(base.dtype), zlib.crc32(np.ascontiguousarray(base)))
        if key == self._base_key:
            return False
        if base.ndim != 3 or base.shape[2] < 3:
            raise PaintError(f"The base texture must be an RGB image, not an array of shape {base.shape}.")
        self._base = np.ascontiguousarray(resample(base[..., :3].astype(np.uint8, copy=False), self.size))
        self._base_key = key
        self._below = None
        self._dirty[:] = True
        return True

    @property
    def base(self) -> np.ndarray:
        return self._base

    def set_coverage(self, coverage: np.ndarray | None, prepared: Padding | None = None) -> None:
        """The UV islands (any square size, resampled); rebuilds the seam-padding map, unless
        `prepared` is that map, built elsewhere (a worker thread: it takes a second at 2048^2)."""
        if coverage is None:
            self.coverage = None
        else:
            cov = np.asarray(coverage).astype(np.uint8)
            if cov.shape != (self.size, self.size):
                cov = cv2.resize(cov, (self.size, self.size), interpolation=cv2.INTER_NEAREST)
            self.coverage = cov.astype(bool)
        if prepared is not None and self.coverage is not None and prepared.depth == self.padding:
            self._padding = prepared
        else:
            self._padding = None if self.coverage is None or not self.padding else Padding(self.coverage, self.padding)
        self._dirty[:] = True

    # ------------------------------------------------------------------ layers
    def layer_by_id(self, layer_id: int) -> Layer:
        for layer in self.layers:
            if layer.id == layer_id:
                return layer
        raise PaintError("That layer no longer exists.")

    def index_of(self, layer: Layer) -> int:
        return next(i for i, l in enumerate(self.layers) if l is layer)

    def _layer(self, index: int) -> Layer:
        if not -len(self.layers) <= index < len(self.layers):
            raise PaintError(f"There is no layer {index} (the stack has {len(self.layers)}).")
        return self.layers[index]

    def _op(self, name: str, do: Callable[[], None], undo: Callable[[], None], kept: int = 0) -> None:
        self._below = None
        do()
        self.history.push(OpStep(name, do, undo, kept))

    def _emit(self, kind: str) -> None:
        for fn in list(self.listeners):
            fn(kind)

    def _dirty_layer(self, layer: Layer) -> None:
        r = self._full_rect() if layer.mask is not None else layer.pixels.bounds()
        if r is not None:
            self.mark_dirty(r)

    def add_layer(self, name: str | None = None, index: int | None = None,
                  pixels: np.ndarray | TiledImage | None = None, opacity: float = 1.0,
                  blend: str = "normal", visible: bool = True) -> Layer:
        """A new layer (empty, or from (S, S, 4) RGBA / (S, S, 3) RGB pixels) at `index`
        (None: on top). Undoable."""
        if pixels is None:
            tiled = TiledImage(self.size)
        elif isinstance(pixels, TiledImage):
            tiled = pixels
        else:
            arr = np.asarray(pixels, np.uint8)
            if arr.ndim == 3 and arr.shape[2] == 3:
                arr = np.concatenate([arr, np.full(arr.shape[:2] + (1,), 255, np.uint8)], axis=2)
            if arr.shape != (self.size, self.size, 4):
                raise PaintError(f"Layer pixels must be {self.size}x{self.size} RGBA, not {arr.shape}.")
            tiled = TiledImage.from_array(arr)
        layer = Layer(name or self._free_name(), tiled, float(np.clip(opacity, 0, 1)),
                      normalise_mode(blend), bool(visible))
        pos = len(self.layers) if index is None else int(np.clip(index, 0, len(self.layers)))

        def do() -> None:
            self.layers.insert(pos, layer)
            self._dirty_layer(layer)
            self._emit("layers")

        def undo() -> None:
            self.layers.remove(layer)
            self._dirty_layer(layer)
            self._emit("layers")
        self._op(f"Add layer {layer.name}", do, undo, layer.nbytes)
        return layer

    def insert_layers(self, layers: list[Layer], step_name: str) -> None:
        """Put ready-made layers (an import) on top as one undoable step."""
        layers = list(layers)

        def do() -> None:
            self.layers.extend(layers)
            for l in layers:
                self._dirty_layer(l)
            self._emit("layers")

        def undo() -> None:
            for l in layers:
                self.layers.remove(l)
                self._dirty_layer(l)
            self._emit("layers")
        self._op(step_name, do, undo, sum(l.nbytes for l in layers))

    def _free_name(self) -> str:
        names = {l.name for l in self.layers}
        return next(f"Layer {i}" for i in itertools.count(1) if f"Layer {i}" not in names)

    def delete_layer(self, index: int) -> None:
        layer = self._layer(index)
        pos = self.index_of(layer)

        def do() -> None:
            self.layers.remove(layer)
            self._dirty_layer(layer)
            self._emit("layers")

        def undo() -> None:
            self.layers.insert(pos, layer)
            self._dirty_layer(layer)
            self._emit("layers")
        self._op(f"Delete layer {layer.name}", do, undo, layer.nbytes)

    def duplicate_layer(self, index: int) -> Layer:
        src = self._layer(index)
        dup = src.copy(f"{src.name} copy")
        pos = self.index_of(src) + 1

        def do() -> None:
            self.layers.insert(pos, dup)
            self._dirty_layer(dup)
            self._emit("layers")

        def undo() -> None:
            self.layers.remove(dup)
            self._dirty_layer(dup)
            self._emit("layers")
        self._op(f"Duplicate layer {src.name}", do, undo, dup.nbytes)
        return dup

    def move_layer(self, index: int, new_index: int) -> None:
        """Reorder: the layer at `index` ends up at `new_index` (0 = bottom)."""
        layer = self._layer(index)
        old = self.index_of(layer)
        new = int(np.clip(new_index, 0, len(self.layers) - 1))
        if new == old:
            return

        def place(i: int) -> Callable[[], None]:
            def fn() -> None:
                self.layers.remove(layer)
                self.layers.insert(i, layer)
                self._dirty_layer(layer)
                self._emit("layers")
            return fn
        self._op(f"Move layer {layer.name}", place(new), place(old))

    def rename_layer(self, index: int, name: str) -> None:
        self.set_layer(index, name=name)

    def set_layer(self, index: int, **changes) -> None:
        """Change name, opacity, blend, visible, locked or mask ((S, S) uint8/bool, None) of a
        layer. Undoable as one step."""
        layer = self._layer(index)
        allowed = {"name", "opacity", "blend", "visible", "locked", "mask"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown layer properties: {', '.join(sorted(unknown))}")
        new = dict(changes)
        if "opacity" in new:
            new["opacity"] = float(np.clip(new["opacity"], 0.0, 1.0))
        if "blend" in new:
            new["blend"] = normalise_mode(new["blend"])
        if "name" in new:
            new["name"] = str(new["name"]).strip() or layer.name
        if new.get("mask") is not None:
            m = np.asarray(new["mask"])
            m = (m.astype(np.uint8) * 255) if m.dtype == bool else m.astype(np.uint8)
            if m.shape != (self.size, self.size):
                raise PaintError(f"A layer mask must be {self.size}x{self.size}, not {m.shape}.")
            new["mask"] = m
        old = {k: getattr(layer, k) for k in new}
        pixels_change = bool(set(new) & {"opacity", "blend", "visible", "mask"})

        def setter(values: dict) -> Callable[[], None]:
            def fn() -> None:
                if pixels_change:
                    self._dirty_layer(layer)
                for k, v in values.items():
                    setattr(layer, k, v)
                if pixels_change:
                    self._dirty_layer(layer)
                self._emit("layers")
            return fn
        what = ", ".join(sorted(new))
        kept = sum(v.nbytes for v in list(old.values()) + list(new.values()) if isinstance(v, np.ndarray))
        self._op(f"Layer {layer.name}: {what}", setter(new), setter(old), kept)

    def set_resolution(self, size: int) -> None:
        """Resample every layer (and masks) to 1024, 2048 or 4096. Undoable."""
        if size not in RESOLUTIONS:
            raise PaintError(f"Texture resolution {size} is not supported; use {', '.join(map(str, RESOLUTIONS))}.")
        if size == self.size:
            return
        old_size = self.size
        old = [(l.pixels, l.mask) for l in self.layers]
        new = [(TiledImage.from_array(resample(l.to_array(), size)),
                None if l.mask is None else resample(l.mask, size)) for l in self.layers]
        base_src, cov_src = self._base, self.coverage

        def setter(sz: int, data: list) -> Callable[[], None]:
            def fn() -> None:
                self.size, self._n = sz, sz // TILE
                for l, (px, m) in zip(self.layers, data):
                    l.pixels, l.mask = px, m
                self._composite = np.zeros((sz, sz, 3), np.uint8)
                self._dirty = np.ones((self._n, self._n), bool)
                self._base = np.ascontiguousarray(resample(base_src, sz))
                self.set_coverage(cov_src)
                self._emit("layers")
            return fn
        kept = sum(p.nbytes for p, _ in old + new)
        self._op(f"Resolution {size}", setter(size, new), setter(old_size, old), kept)

    # ------------------------------------------------------------------ history
    def undo(self) -> str | None:
        self._below = None
        name = self.history.undo(self)
        if name is not None:
            self._emit("pixels")
        return name

    def redo(self) -> str | None:
        self._below = None
        name = self.history.redo(self)
        if name is not None:
            self._emit("pixels")
        return name

    # ------------------------------------------------------------------ compositing
    def _full_rect(self) -> Rect:
        return 0, self.size, 0, self.size

    def mark_dirty(self, rect: Rect) -> None:
        """Texels in `rect` changed: their tiles (and those within the padding) recomposite."""
        p = self.padding if self.coverage is not None else 0
        r = clip_rect((rect[0] - p, rect[1] + p, rect[2] - p, rect[3] + p), self.size)
        if r is not None:
            self._dirty[r[0] // TILE:-(-r[1] // TILE), r[2] // TILE:-(-r[3] // TILE)] = True

    def composite(self, rect: Rect | None = None) -> np.ndarray:
        """The composite (S, S, 3) uint8 with padding, up to date at least inside `rect`
        (None: everywhere). Returns the cached array itself: read it, do not write it."""
        self.update(rect)
        return self._composite

    def refresh(self) -> list[Rect]:
        """Recomposite every dirty tile; the rects refreshed (what a view re-uploads). After a
        dab this includes the seam padding next to it, which may lie outside the dab's rect."""
        rects: list[Rect] = []
        self.update(None, rects)
        return rects

    def update(self, rect: Rect | None = None, done_rects: list | None = None) -> Rect | None:
        """Recomposite dirty tiles (inside `rect` when given); returns the texel rect refreshed
        (their bounding box; `done_rects` collects the rects themselves)."""
        d = self._dirty
        if rect is not None:
            r = clip_rect(rect, self.size)
            if r is None:
                return None
            sub = np.zeros_like(d)
            ty0, ty1, tx0, tx1 = r[0] // TILE, -(-r[1] // TILE), r[2] // TILE, -(-r[3] // TILE)
            sub[ty0:ty1, tx0:tx1] = d[ty0:ty1, tx0:tx1]
            d = sub
        if not d.any():
            return None
        done = None
        for ty0, ty1, tx0, tx1 in _dirty_rects(d):
            r = (ty0 * TILE, min(self.size, ty1 * TILE), tx0 * TILE, min(self.size, tx1 * TILE))
            self._recomposite(r)
            self._dirty[ty0:ty1, tx0:tx1] = False
            if done_rects is not None:
                done_rects.append(r)
            done = r if done is None else (min(done[0], r[0]), max(done[1], r[1]),
                                           min(done[2], r[2]), max(done[3], r[3]))
        return done

    def _recomposite(self, rect: Rect, dest: np.ndarray | None = None) -> None:
        """Composite and pad `rect` into `dest` (default: the cache)."""
        dest = self._composite if dest is None else dest
        y0, y1, x0, x1 = rect
        # Row bands keep the float temporaries in cache (a whole 2048^2 float image does not fit).
        band = max(TILE, (1 << 18) // max(1, x1 - x0) // TILE * TILE)
        for b0 in range(y0, y1, band):
            r = (b0, min(y1, b0 + band), x0, x1)
            pad = self._padding
            if pad is not None and pad.any_in(r):
                # Grow by the padding depth: every padded texel's source is inside.
                p = pad.depth
                g = clip_rect((r[0] - p, r[1] + p, x0 - p, x1 + p), self.size)
                rgb = pad.apply(self.raw_composite(g), g, r)
            else:
                rgb = self.raw_composite(r)
            dest[r[0]:r[1], x0:x1] = _to_u8(rgb)

    def hold_below(self, layer: Layer | None) -> None:
        """While a stroke paints `layer`, keep the composite of everything below it, per tile
        (float32, computed on first use), so each dab composites only `layer` and those above
        (painting on the top layer: one layer instead of all). None releases it; any layer
        operation, undo, redo or new base drops it. The result is bit-identical either way."""
        self._below = None if layer is None else (self.index_of(layer), TiledImage(self.size, 3, np.float32))

    def raw_composite(self, rect: Rect, below: int | None = None) -> np.ndarray:
        """Base + visible layers (those under index `below` when given), float32 (h, w, 3), no padding."""
        y0, y1, x0, x1 = rect
        start = 0
        if below is None and self._below is not None:
            start, cache = self._below
            for key in cache.keys_in(rect):
                if key not in cache.tiles:
                    cache.tiles[key] = self.raw_composite(tile_rect(key, self.size), below=start)
            out = cache.read(rect)
        else:
            out = self._base[y0:y1, x0:x1].astype(np.float32) * np.float32(1 / 255)
        for layer in self.layers[start:below]:
            if not layer.visible or layer.opacity <= 0 or not layer.pixels.any_in(rect):
                continue
            f = layer.pixels.read(rect).astype(np.float32)   # one conversion for colour and alpha
            f *= np.float32(1 / 255)
            a = f[..., 3:4] * np.float32(layer.opacity)
            if layer.mask is not None:
                a *= layer.mask[y0:y1, x0:x1, None].astype(np.float32) * np.float32(1 / 255)
            out = composite_over(out, f[..., :3], a, layer.blend)
        return out

    def flatten(self) -> np.ndarray:
        """A fresh full composite (S, S, 3) uint8, computed from scratch (not the cache)."""
        out = np.empty_like(self._composite)
        self._recomposite(self._full_rect(), out)
        return out


def _dirty_rects(d: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Cover the dirty tiles (bool grid) with rects (ty0, ty1, tx0, tx1) and no clean tile:
    runs of dirty tiles per tile row, stacked while the next row has the same run. A long
    wavy stroke thus never recomposites the clean tiles of its bounding box."""
    rects, open_runs = [], {}
    for ty in range(d.shape[0] + 1):
        runs = {}
        if ty < d.shape[0] and d[ty].any():
            edges = np.flatnonzero(np.diff(np.concatenate([[0], d[ty].view(np.int8), [0]])))
            runs = {(int(a), int(b)): ty for a, b in zip(edges[::2], edges[1::2])}
        for run, start in open_runs.items():
            if run in runs:
                runs[run] = start
            else:
                rects.append((start, ty, run[0], run[1]))
        open_runs = runs
    return rects


def _to_u8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)


__all__ = ["Layer", "LayerStack", "RESOLUTIONS", "BLEND_MODES", "resample"]
