"""Attribute rasterisation on the headless GL context: camera-view maps and UV-space maps.

One tiny program (shaders/raster_attr.*) draws triangles given in clip space into a float32
target and interpolates up to 4 per-vertex values; the depth test keeps the nearest surface.
"""
from __future__ import annotations

import moderngl
import numpy as np

from core.render import headless_context
from core.render.shaders import shader_source

from .camera import PinholeCamera

def _program(ctx: moderngl.Context) -> moderngl.Program:
    """Compiled once per context (contexts are per thread), kept in the context's user slot."""
    extra = ctx.extra if isinstance(ctx.extra, dict) else {}
    if "raster_attr" not in extra:
        extra["raster_attr"] = ctx.program(vertex_shader=shader_source("raster_attr.vert"),
                                           fragment_shader=shader_source("raster_attr.frag"))
        ctx.extra = extra
    return extra["raster_attr"]


def rasterize(clip: np.ndarray, faces: np.ndarray, attributes: np.ndarray, width: int, height: int,
              depth_test: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, C) float32 interpolated attributes (row 0 at the top) and the (H, W) coverage mask.

    clip: (N, 4) clip-space positions; attributes: (N, C) with C <= 4.
    """
    ctx = headless_context()
    attr = np.zeros((len(clip), 4), np.float32)
    a = np.asarray(attributes, np.float32).reshape(len(clip), -1)
    attr[:, :a.shape[1]] = a
    prog = _program(ctx)
    vbo_c = ctx.buffer(np.ascontiguousarray(clip, np.float32).tobytes())
    vbo_a = ctx.buffer(attr.tobytes())
    ibo = ctx.buffer(np.ascontiguousarray(faces, np.int32).tobytes())
    color = ctx.texture((width, height), 4, dtype="f4")
    depth = ctx.depth_renderbuffer((width, height))
    fbo = ctx.framebuffer(color_attachments=[color], depth_attachment=depth)
    vao = ctx.vertex_array(prog, [(vbo_c, "4f", "in_clip"), (vbo_a, "4f", "in_attr")],
                           index_buffer=ibo, index_element_size=4)
    try:
        fbo.use()
        ctx.viewport = (0, 0, width, height)
        fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        ctx.disable(moderngl.CULL_FACE | moderngl.BLEND)
        if depth_test:
            ctx.enable(moderngl.DEPTH_TEST)
        else:
            ctx.disable(moderngl.DEPTH_TEST)
        vao.render(moderngl.TRIANGLES)
        out = np.frombuffer(fbo.read(components=4, dtype="f4", alignment=1), np.float32)
        out = out.reshape(height, width, 4)[::-1]
        # coverage: a separate pass would double the cost; the 4th channel carries 1 when the
        # caller leaves it free, else rely on the depth buffer
        z = np.frombuffer(fbo.read(attachment=-1, components=1, dtype="f4"), np.float32)
        covered = z.reshape(height, width)[::-1] < 1.0
    finally:
        for r in (vao, fbo, color, depth, ibo, vbo_a, vbo_c):
            r.release()
    return np.ascontiguousarray(out[..., :a.shape[1]]), covered


def camera_clip(camera: PinholeCamera, points_cam: np.ndarray) -> np.ndarray:
    """Clip coordinates of camera-space points for `camera` (OpenGL projection)."""
    n, f = camera.near, camera.far
    x, y, z = (np.asarray(points_cam, np.float64)[:, i] for i in range(3))
    cx, cy = camera.center
    # pixel = c + focal * xy / -z  <=>  ndc = (pixel - c) / (size / 2)
    px = camera.focal * x / (camera.width / 2.0)
    py = camera.focal * y / (camera.height / 2.0)
    pz = (f + n) / (n - f) * z + 2 * f * n / (n - f)
    return np.stack([px, py, pz, -z], 1).astype(np.float32)


def camera_depth(camera: PinholeCamera, vertices_cam: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(H, W) camera-space z of the nearest surface (-inf where nothing is drawn)."""
    zmap, covered = rasterize(camera_clip(camera, vertices_cam), faces, vertices_cam[:, 2:3],
                              camera.width, camera.height)
    return np.where(covered, zmap[..., 0], -np.inf).astype(np.float32)


def uv_clip(uvs: np.ndarray) -> np.ndarray:
    """Clip coordinates that lay a mesh out in its UV square (v up = image up)."""
    uv = np.asarray(uvs, np.float32)
    return np.c_[uv * 2.0 - 1.0, np.zeros(len(uv), np.float32), np.ones(len(uv), np.float32)]
