"""OpenGL (moderngl) rendering of avatars: triangle meshes and sphere-traced distance fields,
for the Qt viewport and headless use. See renderer.py for the entry points."""
from .camera import OrbitCamera
from .geometry import silhouette_iou, vertex_normals
from .lighting import Lighting, lighting_preset
from .renderer import MODES, VIEWS, Renderer, headless_context, render_offscreen

__all__ = ["OrbitCamera", "Lighting", "lighting_preset", "Renderer", "render_offscreen",
           "headless_context", "vertex_normals", "silhouette_iou", "MODES", "VIEWS"]
