"""Training and evaluation data drawn from ICT FaceKit: closed skin surfaces and expression mixes.

Only training and evaluation import this; the app runs on the shipped weights alone.
The skin (face + head_and_neck) has four boundary loops (mouth, neck, two eyes); each is closed
by a fan to an extra apex vertex so every sampled face is watertight and its SDF sign is defined.
The eye and mouth apexes sit behind the opening so eyes and an open mouth read as cavities.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph

from core.expressions import EXPRESSION_NAMES, INDEX, PRESETS, weights_from_dict
from core.facekit import FACE_PART_END, SKIN_VERTEX_COUNT, FaceKit

# Rest pose of the model's canonical space: lips slightly parted so that the mouth is a real
# cavity in canonical space and can open when a mesh is animated (see docs/FACEMODEL.md).
REST_EXPRESSION = weights_from_dict({"jawOpen": 0.12})
# How far behind each opening its cap apex sits (cm, along -z): mouth, eyes, neck.
CAP_DEPTH = {"mouth": 1.2, "eye": 0.35, "neck": 0.0}


def boundary_loops(tris: np.ndarray) -> list[np.ndarray]:
    """Ordered vertex loops of the boundary edges of a triangle mesh."""
    e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    key = np.sort(e, axis=1)
    uniq, inv, cnt = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    boundary = e[cnt[inv.ravel()] == 1]  # directed as in their one triangle
    nxt = {int(a): int(b) for a, b in boundary}
    loops, seen = [], set()
    for start in nxt:
        if start in seen:
            continue
        loop, v = [], start
        while v not in seen:
            seen.add(v)
            loop.append(v)
            v = nxt[v]
        loops.append(np.array(loop))
    return loops


@dataclass
class SkinTopology:
    """The closed skin: triangles over skin vertices + 4 apexes, and per-triangle attributes."""
    tris: np.ndarray          # (T, 3) indices into [skin vertices..., apexes...]
    tri_uvs: np.ndarray       # (T, 3, 2) UV of each corner in [0,1]^2 (u/2); caps: 0
    tri_chart: np.ndarray     # (T,) UV island, -1 for cap triangles
    tri_face: np.ndarray      # (T,) bool, triangle lies in the 'face' part (evaluation region)
    loops: list[np.ndarray]   # mouth, neck, eye, eye (skin vertex indices)
    loop_kind: list[str]
    apex_offset: np.ndarray   # (4, 3) apex = loop centroid + offset
    num_charts: int
    landmarks: np.ndarray     # (68,) skin vertex indices

    def close(self, skin: np.ndarray) -> np.ndarray:
        """Append the 4 apex vertices to (..., 11248, 3) skin vertices."""
        apex = np.stack([skin[..., l, :].mean(-2) for l in self.loops], -2) + self.apex_offset
        return np.concatenate([skin, apex], -2)


def skin_topology(fk: FaceKit) -> SkinTopology:
    tris, tuv = fk.skin_triangles()
    # UV islands (charts): connected components of the UV triangulation.
    n = len(fk.uvs)
    r = np.concatenate([tuv[:, 0], tuv[:, 1], tuv[:, 2]])
    c = np.concatenate([tuv[:, 1], tuv[:, 2], tuv[:, 0]])
    _, lab = csgraph.connected_components(sp.coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n)))
    used = np.unique(lab[tuv[:, 0]])
    remap = {int(l): i for i, l in enumerate(used)}
    chart = np.array([remap[int(l)] for l in lab[tuv[:, 0]]], np.int64)
    uv = fk.uvs[tuv].copy()
    uv[..., 0] *= 0.5  # two UV tiles (u in [0,2]) -> [0,1]^2

    loops = boundary_loops(tris)
    neutral = fk.neutral[:SKIN_VERTEX_COUNT]
    kinds = []
    for l in loops:
        cen = neutral[l].mean(0)
        if len(l) == 54 or cen[1] < -8:
            kinds.append("neck")
        elif cen[1] < 0:
            kinds.append("mouth")
        else:
            kinds.append("eye")
    order = np.argsort([["mouth", "neck", "eye"].index(k) for k in kinds], kind="stable")
    loops = [loops[i] for i in order]
    kinds = [kinds[i] for i in order]
    offsets = np.array([[0, 0, -CAP_DEPTH[k]] for k in kinds], np.float32)
    cap = []
    for i, l in enumerate(loops):
        apex = SKIN_VERTEX_COUNT + i
        # Boundary loop is ordered along its triangles' edges; reversed edges keep orientation.
        cap.append(np.stack([np.roll(l, -1), l, np.full(len(l), apex)], 1))
    cap = np.concatenate(cap)
    all_tris = np.concatenate([tris, cap]).astype(np.int64)
    tri_uvs = np.concatenate([uv, np.zeros((len(cap), 3, 2), np.float32)])
    tri_chart = np.concatenate([chart, -np.ones(len(cap), np.int64)])
    tri_face = np.concatenate([np.all(tris < FACE_PART_END, 1), np.zeros(len(cap), bool)])
    return SkinTopology(all_tris, tri_uvs.astype(np.float32), tri_chart, tri_face, loops, kinds,
                        offsets, len(used), fk.landmarks68.astype(np.int64))


class FaceData:
    """Closed skin meshes of ICT identities/expressions, and point samples on them."""

    def __init__(self, fk: FaceKit):
        self.fk = fk
        self.topo = skin_topology(fk)
        s = slice(0, SKIN_VERTEX_COUNT)
        self.neutral = fk.neutral[s].astype(np.float64)
        self.id_basis = fk.identity_deltas[:, s].reshape(fk.num_identity, -1).astype(np.float32)
        self.ex_basis = fk.expression_deltas[:, s].reshape(len(EXPRESSION_NAMES), -1).astype(np.float32)
        assert list(fk.expression_names) == list(EXPRESSION_NAMES), "FaceKit expression order changed"

    def skin(self, identity: np.ndarray | None, expression: np.ndarray | None) -> np.ndarray:
        """Closed vertex array (11252, 3) float64 of one identity/expression."""
        v = self.neutral.ravel().copy()
        if identity is not None:
            v += np.asarray(identity, np.float32) @ self.id_basis
        if expression is not None:
            v += np.asarray(expression, np.float32) @ self.ex_basis
        return self.topo.close(v.reshape(-1, 3))

    def expression_deltas(self) -> np.ndarray:
        """(53, 11252, 3) per-vertex expression offsets of the closed skin (apex: loop mean)."""
        d = self.ex_basis.reshape(len(EXPRESSION_NAMES), -1, 3).astype(np.float64)
        apex = np.stack([d[:, l].mean(1) for l in self.topo.loops], 1)
        return np.concatenate([d, apex], 1)

    def identity_deltas(self) -> np.ndarray:
        """(100, 11252, 3) per-vertex identity offsets of the closed skin (apex: loop mean)."""
        d = self.id_basis.reshape(self.id_basis.shape[0], -1, 3)
        apex = np.stack([d[:, l].mean(1) for l in self.topo.loops], 1)
        return np.concatenate([d, apex], 1)

    def template(self) -> np.ndarray:
        """The canonical template: mean identity in the rest pose."""
        return self.skin(None, REST_EXPRESSION)

    def area_weights(self, verts: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        t = verts[self.topo.tris]
        a = 0.5 * np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1)
        if mask is not None:
            a = a * mask
        return a / a.sum()

    def sample(self, rng: np.random.Generator, n: int, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """n random (triangle index, barycentric) pairs with triangle probabilities `weights`."""
        tri = rng.choice(len(weights), size=n, p=weights)
        r1, r2 = rng.random(n), rng.random(n)
        s = np.sqrt(r1)
        bary = np.stack([1 - s, s * (1 - r2), s * r2], 1)
        return tri, bary

    def points(self, verts: np.ndarray, tri: np.ndarray, bary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions and unit face normals of barycentric samples on a closed mesh."""
        t = verts[self.topo.tris[tri]]
        p = np.einsum("nk,nkd->nd", bary, t)
        nrm = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
        nrm /= np.linalg.norm(nrm, axis=1, keepdims=True) + 1e-12
        return p, nrm


# ---------------------------------------------------------------------------------------------
# Expressions that occur in real faces.
_SPEECH = ("jawOpen", "mouthFunnel", "mouthPucker", "mouthClose", "mouthRollLower", "mouthRollUpper",
           "mouthShrugUpper", "mouthShrugLower", "mouthPress_L", "mouthPress_R", "mouthStretch_L",
           "mouthStretch_R", "mouthLowerDown_L", "mouthLowerDown_R", "mouthUpperUp_L", "mouthUpperUp_R")
_GAZE = ("eyeLookDown", "eyeLookUp", "eyeLookIn", "eyeLookOut")


def sample_expression(rng: np.random.Generator) -> np.ndarray:
    """One 53-weight expression: emotions, speech, blinks/gaze, asymmetric or sparse mixes."""
    kind = rng.random()
    w = np.zeros(len(EXPRESSION_NAMES), np.float32)
    if kind < 0.12:
        return w
    if kind < 0.40:  # a FACS emotion prototype at a random intensity, maybe one-sided
        name = rng.choice([k for k in PRESETS if k != "neutral"])
        w = weights_from_dict(PRESETS[name]) * rng.uniform(0.3, 1.15)
        if rng.random() < 0.25:  # asymmetric: damp one side
            side = "_L" if rng.random() < 0.5 else "_R"
            for i, n in enumerate(EXPRESSION_NAMES):
                if n.endswith(side):
                    w[i] *= rng.uniform(0.0, 0.6)
    elif kind < 0.62:  # speech: a viseme-like jaw/lip shape
        w[INDEX["jawOpen"]] = rng.uniform(0, 0.8) if rng.random() < 0.8 else 0.0
        for n in rng.choice(_SPEECH[1:], size=rng.integers(1, 4), replace=False):
            w[INDEX[n]] = rng.uniform(0, 1)
        # ARKit mouthClose only makes sense together with an open jaw
        w[INDEX["mouthClose"]] = min(w[INDEX["mouthClose"]], w[INDEX["jawOpen"]])
    elif kind < 0.78:  # blinks and gaze
        b = rng.uniform(0, 1)
        if rng.random() < 0.6:
            w[INDEX["eyeBlink_L"]] = w[INDEX["eyeBlink_R"]] = b
        else:
            w[INDEX["eyeBlink_L" if rng.random() < 0.5 else "eyeBlink_R"]] = b
        g = _GAZE[rng.integers(len(_GAZE))]
        amount = rng.uniform(0, 1) * (rng.random() < 0.7)
        if g in ("eyeLookIn", "eyeLookOut"):  # conjugate gaze: one eye in, the other out
            w[INDEX["eyeLookIn_L"]] = w[INDEX["eyeLookOut_R"]] = amount if g == "eyeLookIn" else 0
            w[INDEX["eyeLookOut_L"]] = w[INDEX["eyeLookIn_R"]] = amount if g == "eyeLookOut" else 0
        else:
            w[INDEX[g + "_L"]] = w[INDEX[g + "_R"]] = amount
    else:  # random sparse mix, asymmetric by construction
        k = rng.integers(1, 7)
        idx = rng.choice(len(w), size=k, replace=False)
        w[idx] = rng.uniform(0, 1, size=k)
        w[INDEX["mouthClose"]] = min(w[INDEX["mouthClose"]], w[INDEX["jawOpen"]])
    return np.clip(w, 0, 1).astype(np.float32)


def sample_case(rng: np.random.Generator, num_identity: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """(ICT identity coefficients ~ N(0,1), expression weights)."""
    return rng.standard_normal(num_identity).astype(np.float32), sample_expression(rng)
