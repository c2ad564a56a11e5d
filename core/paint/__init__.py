"""Texture painting core (Qt-free): a layer stack over the avatar's base texture, a brush
engine on the UV canvas, tile undo, seam padding, PSD/PNG files and project storage.

`layers.py` (Layer, LayerStack: layers, blend modes, incremental composite), `brush.py`
(BrushSettings, PRESETS, falloff, dab spacing), `stroke.py` (Stroke: brush, eraser, smudge,
blur, clone, stencil), `tools.py` (fill, eyedropper, decal), `symmetry.py` (MirrorMap),
`history.py` (undo/redo), `seams.py` (padding), `tiles.py` (sparse tiles), `files.py` (PNG
import/export, the project's paint/ folder), `psd.py` (layered PSD), `avatar.py` (the paint
stack of an avatar and the texture it shows).
"""
from __future__ import annotations

from .blend import BLEND_MODES
from .brush import PRESETS, BrushSettings
from .errors import PaintError
from .history import History
from .layers import RESOLUTIONS, Layer, LayerStack
from .stroke import TOOLS, Stencil, Stroke, begin_stroke
from .symmetry import MirrorMap
from .tools import fill, fill_region, pick_colour, stamp_decal

__all__ = ["BLEND_MODES", "PRESETS", "BrushSettings", "PaintError", "History", "RESOLUTIONS",
           "Layer", "LayerStack", "TOOLS", "Stencil", "Stroke", "begin_stroke", "MirrorMap",
           "fill", "fill_region", "pick_colour", "stamp_decal"]
