"""Repainting a texture change without drawing the mesh: the viewport's frames while painting.

A painted dab or an undo changes only the skin's texture, not the geometry, the camera or the
light. A frame is colour = sqrt(albedo * diffuse + added) per skin pixel (shaders/common.glsl,
`shade_terms`), so after a whole frame the viewport can keep, per pixel, the skin's uv, its
`diffuse` and `added` terms (a G-buffer drawn with the frame's own depth buffer: only where the
skin is the visible surface) and the frame's colours. Repainting a box is then one full-screen
pass (scissored): skin pixels shade the new texture, the others copy the kept frame. With
software OpenGL this skips the vertex work of every mesh (skin, eyes, teeth, hair) and the
per-triangle cost of tens of thousands of small triangles in the box: an undo repainting a
large part of the face takes a fraction of a whole frame.

Valid only while nothing but the texture changed since the whole frame, and only while the
texture is sampled from level 0 (painting: mip levels are rebuilt once it settles): the caller
(app/viewport.py) decides, `keep` after each whole frame, `repaint` for a partial one.
"""
from __future__ import annotations

import moderngl
import numpy as np

from .shaders import shader_source

_UNIT = 8          # texture units 8-11: above what the renderer uses (0-4, FXAA 7)


class PaintFrame:
    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        self._progs: dict = {}
        self._size = (0, 0)
        self._scene: moderngl.Texture | None = None
        self._scene_fbo = None
        self._g: tuple = ()
        self._g_fbo = None
        self._g_depth = None
        self._vao = None
        self._vao_key = None
        self._empty = None
        self._scene_key = None
        self.scene_ok = False      # the kept frame is the last whole frame
        self.g_ok = False          # the G-buffer matches it
        self.repaints = 0

    # ------------------------------------------------------------------ targets
    def _targets(self, w: int, h: int) -> None:
        if self._size == (w, h):
            return
        self.release()
        ctx = self.ctx
        self._scene = ctx.texture((w, h), 4)
        self._scene_fbo = ctx.framebuffer(color_attachments=[self._scene])
        self._g = tuple(ctx.texture((w, h), 4, dtype="f4") for _ in range(3))
        for t in (self._scene, *self._g):
            t.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._size = (w, h)

    def release(self) -> None:
        for obj in (self._scene_fbo, self._g_fbo, self._scene, *self._g):
            if obj is not None:
                obj.release()
        self._scene = self._scene_fbo = self._g_fbo = self._g_depth = None
        self._g = ()
        self._size = (0, 0)
        self.scene_ok = self.g_ok = False

    def invalidate(self) -> None:
        self.scene_ok = self.g_ok = False
        self._scene_key = None

    # ------------------------------------------------------------------ after a whole frame
    def keep(self, fbo: moderngl.Framebuffer, w: int, h: int, scene_key=None) -> None:
        """Keep the whole frame just drawn in `fbo` (before any overlay such as the brush
        outline). `scene_key` names everything but the texture that the frame shows (camera,
        size, view, poses): while it stays the same the G-buffer stays valid (a whole frame
        after the mip levels were rebuilt); otherwise it is drawn again when first needed."""
        self._targets(w, h)
        self.ctx.copy_framebuffer(self._scene_fbo, fbo)
        self.g_ok = self.g_ok and scene_key is not None and scene_key == self._scene_key
        self._scene_key = scene_key
        self.scene_ok = True

    def _program(self, name: str, light: int, vertex_light: bool = False) -> moderngl.Program:
        key = (name, light, vertex_light)
        if key not in self._progs:
            d = {"LIGHT_MODE": str(light), "VIEW": "1", "CARVE": "1"}
            if vertex_light:      # the same light terms as the frame's skin (renderer.VERTEX_LIT_VIEWS)
                d["VERTEX_LIGHT"] = "1"
            vert = "mesh.vert" if name == "gbuffer" else "fullscreen.vert"
            self._progs[key] = self.ctx.program(vertex_shader=shader_source(vert, d),
                                                fragment_shader=shader_source(f"paint_{name}.frag", d))
        return self._progs[key]

    def _draw_gbuffer(self, renderer, depth, w: int, h: int, camera, lighting) -> None:
        """The skin drawn once more with the frame's depth (test <=, no writes): uv, diffuse and
        added terms where it is the visible surface; zero elsewhere."""
        from .renderer import _set

        ctx, m = self.ctx, renderer._mesh
        if self._g_fbo is None or self._g_depth is not depth:
            if self._g_fbo is not None:
                self._g_fbo.release()
            self._g_fbo = ctx.framebuffer(color_attachments=list(self._g), depth_attachment=depth)
            self._g_depth = depth
        light = 1 if lighting.mode == "ibl" else 0
        prog = self._program("gbuffer", light, renderer.cull_back_faces)
        key = (id(m), prog.glo)
        if self._vao_key != key:
            if self._vao is not None:
                self._vao.release()
            content = [(m["pos"], "3f", "in_pos"), (m["nrm"], "3f", "in_normal"), (m["uv"], "2f", "in_uv"),
                       (m["occ"], "1f", "in_occlusion")]
            self._vao = ctx.vertex_array(prog, [c for c in content if c[2] in prog],
                                         index_buffer=m["ibo"], index_element_size=4)
            self._vao_key = key
        fb = self._g_fbo
        fb.depth_mask = False              # keep the frame's depth: the test reads it
        fb.use()
        ctx.viewport = (0, 0, w, h)
        fb.clear(0.0, 0.0, 0.0, 0.0)
        view_m = camera.view_matrix()
        uniforms = {"u_view_rot": view_m[:3, :3], **renderer._light_uniforms(lighting), "u_view": view_m,
                    "u_proj": camera.projection_matrix(w / h), **renderer._carve_uniforms()}
        for name, value in uniforms.items():
            _set(prog, name, value)
        ctx.enable(moderngl.DEPTH_TEST)
        ctx.disable(moderngl.BLEND)
        if renderer.cull_back_faces:
            ctx.enable(moderngl.CULL_FACE)
        ctx.depth_func = "<="
        try:
            self._vao.render(moderngl.TRIANGLES, vertices=3 * len(m["faces"]))
        finally:
            ctx.depth_func = "<"
            ctx.disable(moderngl.CULL_FACE)
            fb.depth_mask = True
        self.g_ok = True

    # ------------------------------------------------------------------ a partial frame
    def repaint(self, renderer, fbo: moderngl.Framebuffer, depth, scissor: tuple[int, int, int, int],
                w: int, h: int, camera, lighting) -> bool:
        """Repaint `scissor` (x, y from the bottom, w, h) of `fbo` for the renderer's current
        texture. False when the kept frame cannot serve (draw the frame as usual)."""
        tex = renderer._texture
        if (not self.scene_ok or self._size != (w, h) or renderer._mesh is None or tex is None
                or tex.filter != (moderngl.LINEAR, moderngl.LINEAR)):
            return False
        if not self.g_ok:
            self._draw_gbuffer(renderer, depth, w, h, camera, lighting)
        ctx = self.ctx
        prog = self._program("deferred", 0)
        if self._empty is None:
            self._empty = ctx.vertex_array(prog, [])
        fbo.scissor = scissor
        fbo.use()
        ctx.viewport = (0, 0, w, h)
        ctx.disable(moderngl.DEPTH_TEST | moderngl.BLEND | moderngl.CULL_FACE)
        tex.use(0)
        for i, t in enumerate((*self._g, self._scene)):
            t.use(_UNIT + i)
        for name, unit in (("u_texture", 0), ("u_g_uv", _UNIT), ("u_g_diffuse", _UNIT + 1),
                           ("u_g_added", _UNIT + 2), ("u_scene", _UNIT + 3)):
            if name in prog:
                prog[name].value = unit
        self._empty.render(moderngl.TRIANGLES, vertices=3)
        ctx.enable(moderngl.DEPTH_TEST)
        self.repaints += 1
        return True


__all__ = ["PaintFrame"]
