"""Photos of ICT FaceKit faces with known geometry: for landmark calibration and the fitting
benchmark ("photos rendered from ICT identities and expressions the model never saw")."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.facemodel.data import FaceData
from core.render import Lighting, Renderer, headless_context
from core.render.geometry import vertex_normals

from .camera import PinholeCamera


@dataclass
class SyntheticPhoto:
    image: np.ndarray              # (H, W, 3) uint8 RGB
    depth: np.ndarray              # (H, W) window depth, 1 = background
    camera: PinholeCamera
    identity: np.ndarray           # (100,) ICT coefficients
    expression: np.ndarray         # (53,) weights
    vertices: np.ndarray           # (11252, 3) closed skin, model space (cm)


class IctPhotographer:
    """Renders closed ICT skins with the shipped default skin texture under studio light.

    Vertices are split where a vertex has several UVs; the eye and mouth caps take the UV of
    their hole's centre, where the default texture paints eyes and mouth interior.
    """

    def __init__(self, data: FaceData, texture: np.ndarray | None = None, samples: int = 4):
        self.data = data
        topo = data.topo
        tris, tuv = topo.tris, topo.tri_uvs.copy()
        cap = topo.tri_chart < 0
        # cap corners: loop vertices keep their skin UV (found from any skin triangle), apex = mean
        skin_uv = np.zeros((int(tris.max()) + 1, 2), np.float32)
        skin_uv[tris[~cap].ravel()] = tuv[~cap].reshape(-1, 2)
        for i, loop in enumerate(topo.loops):
            skin_uv[len(data.neutral) + i] = skin_uv[loop].mean(0)
        tuv[cap] = skin_uv[tris[cap]]
        key = np.concatenate([tris.reshape(-1, 1), np.round(tuv.reshape(-1, 2) * 1e5)], 1)
        _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
        self.src = tris.ravel()[first]                  # split vertex -> closed-skin vertex
        self.uvs = tuv.reshape(-1, 2)[first].astype(np.float32)
        self.faces = inverse.reshape(-1, 3).astype(np.int32)
        self.texture = texture
        self.samples = samples
        self._renderer: Renderer | None = None

    def render(self, identity: np.ndarray, expression: np.ndarray, camera: PinholeCamera,
               background=(0.45, 0.47, 0.5), lighting: Lighting | None = None) -> SyntheticPhoto:
        v = self.data.skin(identity, expression)
        posed = camera.to_camera(v)[self.src].astype(np.float32)
        r = self._renderer
        if r is None:
            r = self._renderer = Renderer(headless_context(), samples=0)
            if self.texture is not None:
                r.set_texture(self.texture)
            r.set_mesh(posed, self.faces, self.uvs)
        r.update_vertices(posed, vertex_normals(posed, self.faces))
        img, depth = r.render_image(camera.width, camera.height, camera.render_camera(), depth=True,
                                    view="textured", background=background, lighting=lighting,
                                    show_points=False)
        return SyntheticPhoto(np.ascontiguousarray(img[..., :3]), depth, camera,
                              np.asarray(identity, np.float32), np.asarray(expression, np.float32), v)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.release()
            self._renderer = None
