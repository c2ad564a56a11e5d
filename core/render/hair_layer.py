"""GL side of the hair (core.head.hair): buffers, strand texture and the Kajiya-Kay program.

The Renderer owns one HairLayer and draws it after the head (mesh or traced SDF: both write
depth), so the hair sits on the skin in every mode. Colour and grey are uniforms: changing
them never touches a buffer.
"""
from __future__ import annotations

import moderngl
import numpy as np

from core.head.hair import GREY, strand_texture, style_shine

from .shaders import shader_source


def _srgb(c) -> tuple[float, float, float]:
    return tuple(float(x) for x in np.asarray(c, np.float32).reshape(3))


class HairLayer:
    def __init__(self, ctx: moderngl.Context):
        self.ctx = ctx
        self._progs: dict[tuple, moderngl.Program] = {}
        self._vaos: dict[tuple, moderngl.VertexArray] = {}
        self._buf: dict[str, moderngl.Buffer] = {}
        self._count = 0
        self._faces: np.ndarray | None = None
        self.colour = (0.23, 0.15, 0.09)
        self.grey = 0.0
        self.shine = 1.0
        self._tex = self._strand_texture()

    @property
    def empty(self) -> bool:
        return self._count == 0

    def _strand_texture(self) -> moderngl.Texture:
        img = np.ascontiguousarray(strand_texture()[::-1])       # row 0 = v 0
        tex = self.ctx.texture((img.shape[1], img.shape[0]), 4, img.tobytes(), alignment=1)
        tex.build_mipmaps()
        # One mip level per lookup (not trilinear): half the texel fetches on a software rasteriser.
        tex.filter = (moderngl.LINEAR_MIPMAP_NEAREST, moderngl.LINEAR)
        tex.repeat_x = tex.repeat_y = True
        return tex

    def program(self, view: str, light: int) -> moderngl.Program:
        from .renderer import _VIEW_KIND

        key = (view, light)
        if key not in self._progs:
            d = {"VIEW": str(_VIEW_KIND.get(view, 0)), "LIGHT_MODE": str(light)}
            self._progs[key] = self.ctx.program(vertex_shader=shader_source("hair.vert", d),
                                                fragment_shader=shader_source("hair.frag", d))
        return self._progs[key]

    def set_mesh(self, hair) -> None:
        """A core.head.hair.HairMesh (or None / an empty one: no hair)."""
        self._release_buffers()
        if hair is None or hair.empty:
            return
        ctx = self.ctx
        f = np.ascontiguousarray(hair.faces, np.int32)
        self._buf = {
            "pos": ctx.buffer(np.ascontiguousarray(hair.vertices, np.float32).tobytes(), dynamic=True),
            "nrm": ctx.buffer(np.ascontiguousarray(hair.normals, np.float32).tobytes(), dynamic=True),
            "tan": ctx.buffer(np.ascontiguousarray(hair.tangents, np.float32).tobytes(), dynamic=True),
            "uv": ctx.buffer(np.ascontiguousarray(hair.uvs, np.float32).tobytes()),
            "attr": ctx.buffer(hair.attributes().tobytes()),
            "ibo": ctx.buffer(f.tobytes())}
        self._count = len(hair.vertices)
        self._faces = f
        self.set_colour(hair.style.colour, hair.style.grey)
        self.shine = style_shine(hair.style)

    def set_colour(self, colour, grey: float) -> None:
        self.colour, self.grey = _srgb(colour), float(grey)

    def update(self, vertices: np.ndarray, normals: np.ndarray | None = None,
               tangents: np.ndarray | None = None) -> None:
        """New positions (and optionally normals/tangents, e.g. turned with the head)."""
        if self.empty:
            return
        v = np.ascontiguousarray(vertices, np.float32)
        if v.shape != (self._count, 3):
            raise ValueError(f"expected ({self._count}, 3) hair vertices, got {v.shape}")
        self._buf["pos"].write(v.tobytes())
        if normals is not None:
            self._buf["nrm"].write(np.ascontiguousarray(normals, np.float32).tobytes())
        if tangents is not None:
            self._buf["tan"].write(np.ascontiguousarray(tangents, np.float32).tobytes())

    def draw(self, view: str, light: int, uniforms: dict, set_uniform) -> None:
        if self.empty:
            return
        prog = self.program(view, light)
        key = (view, light)
        if key not in self._vaos:
            b = self._buf
            content = [(b["pos"], "3f", "in_pos"), (b["nrm"], "3f", "in_normal"),
                       (b["tan"], "3f", "in_tangent"), (b["uv"], "2f", "in_uv"),
                       (b["attr"], "2f", "in_attr")]
            self._vaos[key] = self.ctx.vertex_array(prog, [c for c in content if c[2] in prog],
                                                    index_buffer=b["ibo"], index_element_size=4)
        self._tex.use(5)
        for name, value in {**uniforms, "u_strands": 5, "u_hair_colour": [c * 1.0 for c in self.colour],
                            "u_grey": self.grey, "u_shine": self.shine, "u_grey_colour": GREY}.items():
            set_uniform(prog, name, value)
        self.ctx.enable(moderngl.CULL_FACE)
        self._vaos[key].render(moderngl.TRIANGLES)
        self.ctx.disable(moderngl.CULL_FACE)

    def _release_buffers(self) -> None:
        for vao in self._vaos.values():
            vao.release()
        self._vaos.clear()
        for b in self._buf.values():
            b.release()
        self._buf.clear()
        self._count = 0
        self._faces = None

    def release(self) -> None:
        self._release_buffers()
        for p in self._progs.values():
            p.release()
        self._progs.clear()
        self._tex.release()
