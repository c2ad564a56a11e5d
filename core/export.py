"""Export an avatar: OBJ + MTL + PNG, or a binary glTF (GLB) with the 53 expressions as morph
targets named as in ARKit, so Blender, Unity and three.js can drive them.

trimesh's GLB writer has no morph targets, so the glTF JSON and binary chunk are written here
(glTF 2.0: https://registry.khronos.org/glTF/specs/2.0/glTF-2.0.html). Plain functions on numpy
arrays, plus export_avatar() that builds the arrays from the face model.
"""
from __future__ import annotations

import io
import json
import os
import struct
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .atomic import write_atomic
from .meshops import vertex_normals

EXPORT_SUFFIXES = (".glb", ".obj")


class ExportCancelled(Exception):
    """The user cancelled an export; nothing was written."""


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    img = np.ascontiguousarray(image, dtype=np.uint8)
    Image.fromarray(img, "RGBA" if img.ndim == 3 and img.shape[2] == 4 else "RGB").save(buf, format="PNG")
    return buf.getvalue()


# --- OBJ ------------------------------------------------------------------------------------------

def write_obj(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray,
              normals: np.ndarray | None = None, texture: np.ndarray | None = None,
              name: str = "avatar", parts: Sequence = (),
              part_weights: np.ndarray | None = None) -> list[Path]:
    """Write PATH.obj, PATH.mtl and (with a texture) PATH.png side by side; returns the paths.

    `uvs` follow the OBJ/OpenGL convention (v = 0 at the bottom row of the image), as the face
    model's do, so they are written unchanged. `parts` (core.head.parts.PartMesh: eyes, teeth,
    hair) follow as their own objects and materials, posed with the 53 `part_weights` (None:
    neutral); a textured part writes PATH_<part>.png.
    """
    path = Path(path)
    mtl, png = path.with_suffix(".mtl"), path.with_suffix(".png")
    v = np.asarray(vertices, np.float32)
    f = np.asarray(faces, np.int64) + 1  # OBJ indices start at 1
    n = vertex_normals(v, faces) if normals is None else np.asarray(normals, np.float32)
    lines = [f"# Likeness avatar '{name}': {len(v)} vertices, {len(f)} triangles, units cm",
             f"mtllib {mtl.name}", f"o {_safe(name)}"]
    body = io.StringIO()
    body.write("\n".join(lines) + "\n")
    np.savetxt(body, v, fmt="v %.6f %.6f %.6f")
    np.savetxt(body, np.asarray(uvs, np.float32), fmt="vt %.6f %.6f")
    np.savetxt(body, n, fmt="vn %.6f %.6f %.6f")
    body.write("usemtl skin\ns 1\n")
    np.savetxt(body, np.repeat(f, 3, axis=1), fmt="f %d/%d/%d %d/%d/%d %d/%d/%d")
    material = ["newmtl skin", "Ka 1 1 1", "Kd 1 1 1", "Ks 0.05 0.05 0.05", "Ns 20", "d 1", "illum 2"]
    written = [path, mtl]
    if texture is not None:
        material.append(f"map_Kd {png.name}")
        png.write_bytes(png_bytes(texture))
        written.append(png)
    offset = len(v)
    for part in parts:
        pv = part.posed(part_weights)
        pn = vertex_normals(pv, part.faces)
        pname = _safe(part.name)
        body.write(f"o {pname}\n")
        np.savetxt(body, pv, fmt="v %.6f %.6f %.6f")
        puv = part.uvs if part.uvs is not None else np.zeros((len(pv), 2), np.float32)
        np.savetxt(body, puv, fmt="vt %.6f %.6f")
        np.savetxt(body, pn, fmt="vn %.6f %.6f %.6f")
        body.write(f"usemtl {pname}\ns 1\n")
        np.savetxt(body, np.repeat(part.faces.astype(np.int64) + offset + 1, 3, axis=1),
                   fmt="f %d/%d/%d %d/%d/%d %d/%d/%d")
        offset += len(pv)
        col = " ".join(f"{c:.4f}" for c in part.colour)
        material += ["", f"newmtl {pname}", "Ka 1 1 1", f"Kd {col}",
                     f"Ks {part.specular:.3f} {part.specular:.3f} {part.specular:.3f}",
                     f"Ns {part.shininess:.1f}", "d 1", "illum 2"]
        if part.texture is not None:
            ppng = path.with_name(f"{path.stem}_{pname}.png")
            ppng.write_bytes(png_bytes(part.texture))
            material.append(f"map_Kd {ppng.name}")
            if getattr(part, "alpha_cutoff", None) is not None:   # hair: strands in the alpha
                material.append(f"map_d {ppng.name}")
            written.append(ppng)
    mtl.write_text("\n".join(material) + "\n")
    path.write_text(body.getvalue())
    return written


# --- GLB ------------------------------------------------------------------------------------------

_FLOAT, _UINT = 5126, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963


class _BinaryBuilder:
    """Collects bufferViews and accessors into one 4-byte-aligned binary chunk."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.length = 0
        self.buffer_views: list[dict] = []
        self.accessors: list[dict] = []

    def view(self, data: bytes, target: int | None = None) -> int:
        pad = (-self.length) % 4
        if pad:
            self.chunks.append(b"\0" * pad)
            self.length += pad
        bv = {"buffer": 0, "byteOffset": self.length, "byteLength": len(data)}
        if target is not None:
            bv["target"] = target
        self.chunks.append(data)
        self.length += len(data)
        self.buffer_views.append(bv)
        return len(self.buffer_views) - 1

    def accessor(self, array: np.ndarray, kind: str, target: int | None = None,
                 bounds: bool = False) -> int:
        comp = _UINT if array.dtype == np.uint32 else _FLOAT
        acc = {"bufferView": self.view(np.ascontiguousarray(array).tobytes(), target),
               "componentType": comp, "count": int(array.shape[0]), "type": kind}
        if bounds:  # required for POSITION, including morph-target POSITION
            acc["min"] = [float(x) for x in array.min(axis=0)]
            acc["max"] = [float(x) for x in array.max(axis=0)]
        self.accessors.append(acc)
        return len(self.accessors) - 1

    def target_accessor(self, delta: np.ndarray, threshold: float, bounds: bool = True) -> int:
        """A morph-target accessor: sparse (indices + values of the moving vertices, zeros
        elsewhere) when that is smaller than dense, else dense. Offsets below `threshold` are
        dropped only in the sparse form, where they are invisible by construction."""
        delta = np.ascontiguousarray(delta, np.float32)
        moving = np.flatnonzero(np.abs(delta).max(axis=1) >= threshold).astype(np.uint32)
        if len(moving) * 16 >= delta.nbytes:  # index (4) + value (12) per moving vertex
            return self.accessor(delta, "VEC3", bounds=bounds)
        kept = np.zeros_like(delta)
        kept[moving] = delta[moving]
        acc: dict = {"componentType": _FLOAT, "count": int(len(delta)), "type": "VEC3"}
        if bounds:
            acc["min"] = [float(x) for x in kept.min(axis=0)]
            acc["max"] = [float(x) for x in kept.max(axis=0)]
        if len(moving):
            acc["sparse"] = {
                "count": int(len(moving)),
                "indices": {"bufferView": self.view(moving.tobytes()), "componentType": _UINT},
                "values": {"bufferView": self.view(np.ascontiguousarray(delta[moving]).tobytes())},
            }
        self.accessors.append(acc)
        return len(self.accessors) - 1

    def data(self) -> bytes:
        out = b"".join(self.chunks)
        return out + b"\0" * ((-len(out)) % 4)


def write_glb(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray,
              normals: np.ndarray | None = None, morph_targets: np.ndarray | None = None,
              target_names: Sequence[str] = (), weights: np.ndarray | None = None,
              texture: np.ndarray | None = None, name: str = "avatar",
              cancelled: Callable[[], bool] = lambda: False, target_normals: bool = False,
              sparse_threshold: float = 5e-3, parts: Sequence = (),
              part_weights: np.ndarray | None = None,
              extend: Callable[[dict, "_BinaryBuilder"], None] | None = None) -> Path:
    """Write a self-contained GLB: one mesh, texture embedded, morph targets as POSITION and
    NORMAL deltas named in mesh.extras.targetNames; mesh.weights are the initial weights.

    Units: the face model works in centimetres, glTF in metres, so positions are scaled by 0.01.
    A target that moves few vertices by more than `sparse_threshold` cm (0.05 mm, far below
    what a render resolves; an eye blink moves only the eyelids) is stored as a glTF sparse
    accessor of the vertices that move, which keeps the file small. NORMAL deltas are optional
    in glTF; pass
    target_normals=True to include them (importers otherwise keep the base normals).

    `parts` (core.head.parts.PartMesh: eyes, teeth, hair) become further meshes and nodes
    (children of the avatar's node), each with its own material (base colour factor, optional
    embedded texture) and its morph targets (named as the ARKit controls that drive them, so an
    importer drives the skin's and the parts' targets of one name together); their initial
    weights come from the 53 `part_weights`.
    `extend(gltf, builder)`, when given, adds to the document before it is written (an
    animation: core.animation.export).
    """
    path = Path(path)
    scale = np.float32(0.01)
    v = np.asarray(vertices, np.float32) * scale
    f = np.asarray(faces, np.uint32).reshape(-1)
    n = _unit_normals(vertex_normals(vertices, faces) if normals is None else normals)
    # glTF's uv origin is the image's top-left corner; the model's is bottom-left.
    t = np.asarray(uvs, np.float32).copy()
    t[:, 1] = 1.0 - t[:, 1]
    b = _BinaryBuilder()
    attributes = {
        "POSITION": b.accessor(v, "VEC3", _ARRAY_BUFFER, bounds=True),
        "NORMAL": b.accessor(n, "VEC3", _ARRAY_BUFFER),
        "TEXCOORD_0": b.accessor(t, "VEC2", _ARRAY_BUFFER),
    }
    primitive = {"attributes": attributes, "indices": b.accessor(f, "SCALAR", _ELEMENT_ARRAY_BUFFER),
                 "mode": 4}
    mesh: dict = {"name": _safe(name), "primitives": [primitive]}
    if morph_targets is not None and len(morph_targets):
        deltas = np.asarray(morph_targets, np.float32)
        if deltas.shape[1:] != v.shape or len(target_names) != len(deltas):
            raise ValueError(f"morph targets {deltas.shape} and {len(target_names)} names do not "
                             f"match {len(v)} vertices")
        targets = []
        for d in deltas:
            if cancelled():
                raise ExportCancelled()
            target = {"POSITION": b.target_accessor(d * scale, sparse_threshold * float(scale))}
            if target_normals:
                dn = vertex_normals(np.asarray(vertices, np.float32) + d, faces) - n
                target["NORMAL"] = b.target_accessor(dn.astype(np.float32), 1e-4, bounds=False)
            targets.append(target)
        primitive["targets"] = targets
        w = np.zeros(len(deltas), np.float32) if weights is None else np.asarray(weights, np.float32)
        mesh["weights"] = [float(x) for x in w]
        mesh["extras"] = {"targetNames": list(target_names)}
        # Some importers read the names from the primitive instead of the mesh.
        primitive["extras"] = {"targetNames": list(target_names)}
    gltf: dict = {
        "asset": {"version": "2.0", "generator": "Likeness"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"name": _safe(name), "mesh": 0}],
        "meshes": [mesh],
    }
    material: dict = {"name": "skin", "pbrMetallicRoughness": {"metallicFactor": 0.0, "roughnessFactor": 0.6},
                      "doubleSided": False}
    images: list[dict] = []
    if texture is not None:
        images.append({"bufferView": b.view(png_bytes(texture)), "mimeType": "image/png", "name": "albedo"})
        material["pbrMetallicRoughness"]["baseColorTexture"] = {"index": 0}
    gltf["materials"] = [material]
    primitive["material"] = 0
    for part in parts:
        if cancelled():
            raise ExportCancelled()
        _glb_part(gltf, b, images, part, part_weights, scale, sparse_threshold)
    if extend is not None:
        extend(gltf, b)
    if images:
        gltf["images"] = images
        gltf["samplers"] = [{"magFilter": 9729, "minFilter": 9987, "wrapS": 33071, "wrapT": 33071},
                            {"magFilter": 9729, "minFilter": 9987, "wrapS": 10497, "wrapT": 10497}]
        gltf["textures"] = [{"source": i, "sampler": int(img.pop("_repeat", False))}   # 1: tiling
                            for i, img in enumerate(images)]
    binary = b.data()
    gltf["accessors"], gltf["bufferViews"] = b.accessors, b.buffer_views
    gltf["buffers"] = [{"byteLength": len(binary)}]
    js = json.dumps(gltf, separators=(",", ":")).encode("utf-8")
    js += b" " * ((-len(js)) % 4)
    total = 12 + 8 + len(js) + 8 + len(binary)
    write_atomic(path, struct.pack("<4sII", b"glTF", 2, total) + struct.pack("<I4s", len(js), b"JSON") + js
                 + struct.pack("<I4s", len(binary), b"BIN\0") + binary)
    return path


def _glb_part(gltf: dict, b: _BinaryBuilder, images: list[dict], part, weights, scale,
              sparse_threshold: float) -> None:
    """Append one PartMesh as a mesh + child node of node 0 (see write_glb)."""
    pname = _safe(part.name)
    v = part.vertices * scale
    attributes = {"POSITION": b.accessor(v, "VEC3", _ARRAY_BUFFER, bounds=True),
                  "NORMAL": b.accessor(_unit_normals(part.normals()), "VEC3", _ARRAY_BUFFER)}
    mat: dict = {"name": pname, "pbrMetallicRoughness": {
        "baseColorFactor": [float(c) ** 2.2 for c in part.colour] + [1.0],   # glTF factors are linear
        "metallicFactor": 0.0, "roughnessFactor": float(part.roughness)},
        "doubleSided": bool(part.double_sided)}
    if part.uvs is not None:
        t = part.uvs.copy()
        t[:, 1] = 1.0 - t[:, 1]
        attributes["TEXCOORD_0"] = b.accessor(t, "VEC2", _ARRAY_BUFFER)
        if part.texture is not None:
            # An alpha-masked part (hair) keeps its alpha and tiles its texture.
            masked = getattr(part, "alpha_cutoff", None) is not None
            img = np.asarray(part.texture)
            images.append({"bufferView": b.view(png_bytes(img if masked else img[..., :3])),
                           "mimeType": "image/png", "name": pname, "_repeat": masked})
            mat["pbrMetallicRoughness"]["baseColorTexture"] = {"index": len(images) - 1}
            if masked:
                mat["alphaMode"], mat["alphaCutoff"] = "MASK", float(part.alpha_cutoff)
    vertex_alpha = getattr(part, "vertex_alpha", None)
    if vertex_alpha is not None:   # COLOR_0 multiplies the base colour, alpha included
        rgba = np.ones((len(v), 4), np.float32)
        rgba[:, 3] = vertex_alpha
        attributes["COLOR_0"] = b.accessor(rgba, "VEC4", _ARRAY_BUFFER)
    gltf["materials"].append(mat)
    prim: dict = {"attributes": attributes, "mode": 4, "material": len(gltf["materials"]) - 1,
                  "indices": b.accessor(part.faces.astype(np.uint32).reshape(-1), "SCALAR",
                                        _ELEMENT_ARRAY_BUFFER)}
    mesh: dict = {"name": pname, "primitives": [prim]}
    if part.morph_targets is not None and len(part.morph_names):
        prim["targets"] = [{"POSITION": b.target_accessor(d * scale, sparse_threshold * float(scale))}
                           for d in part.morph_targets]
        w = np.zeros(len(part.morph_names), np.float32)
        if weights is not None:
            w = np.asarray(weights, np.float32)[part.morph_indices()]
        mesh["weights"] = [float(x) for x in w]
        mesh["extras"] = {"targetNames": list(part.morph_names)}
        prim["extras"] = {"targetNames": list(part.morph_names)}
    gltf["meshes"].append(mesh)
    gltf["nodes"].append({"name": pname, "mesh": len(gltf["meshes"]) - 1})
    gltf["nodes"][0].setdefault("children", []).append(len(gltf["nodes"]) - 1)


def _unit_normals(n: np.ndarray) -> np.ndarray:
    """glTF requires unit normals: vertices only on degenerate triangles (a zero sum) get +z."""
    n = np.asarray(n, np.float32).copy()
    length = np.linalg.norm(n, axis=1)
    bad = length < 0.5
    n[bad] = (0.0, 0.0, 1.0)
    n[~bad] /= length[~bad, None]
    return n


def read_glb_json(path: str | os.PathLike) -> dict:
    """The JSON chunk of a GLB file (for checks and tests)."""
    data = Path(path).read_bytes()
    magic, version, total = struct.unpack_from("<4sII", data, 0)
    if magic != b"glTF" or version != 2:
        raise ValueError(f"{path} is not a glTF 2.0 binary file")
    length, kind = struct.unpack_from("<I4s", data, 12)
    if kind != b"JSON":
        raise ValueError(f"{path}: first chunk is not JSON")
    return json.loads(data[20:20 + length])


# --- from an avatar -------------------------------------------------------------------------------

def export_avatar(avatar, path: str | os.PathLike, model, resolution: int = 128,
                  max_triangles: int | None = None,
                  progress: Callable[[float, str], None] = lambda f, s: None,
                  cancelled: Callable[[], bool] = lambda: False, mesh=None,
                  extend: Callable[[dict, _BinaryBuilder], None] | None = None) -> list[Path]:
    """Export `avatar` (core.avatar.Avatar) with the face model to .glb or .obj at `path`.

    The GLB carries the neutral-expression mesh of the avatar's identity with the 53 expression
    morph targets, its initial weights set to the avatar's expression; the OBJ carries the mesh as
    currently posed. `mesh` may be passed to reuse an already extracted mesh of this identity.
    `extend` is passed to write_glb (GLB only). Returns the written files.
    """
    from .appearance import avatar_texture
    from .expressions import EXPRESSION_NAMES

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise ValueError(f"cannot export to '{path.name}': use a .glb or .obj file name")
    if not path.parent.is_dir():
        raise ValueError(f"cannot export to {path}: the folder {path.parent} does not exist")
    identity = avatar.identity
    if mesh is None:
        progress(0.05, "Extracting mesh")
        mesh = model.extract_mesh(identity, None, resolution=resolution, max_triangles=max_triangles)
    if cancelled():
        raise ExportCancelled()
    progress(0.5, "Building morph targets")
    anim = model.animator(mesh, identity)
    texture = avatar_texture(avatar)
    if cancelled():
        raise ExportCancelled()
    progress(0.6, "Building hair")
    head = _head_parts(avatar)
    parts = head.parts + _hair_parts(avatar, model, mesh, anim)
    # The skin's closing cap over the mouth would hide the teeth in other programs: drop the
    # skin triangles inside the carves (at neutral), as the renderer hides them.
    from .head.parts import pose_carves, uncarved_faces

    base = anim.neutral() if hasattr(anim, "neutral") else anim.vertices(np.zeros(len(EXPRESSION_NAMES)))
    faces = uncarved_faces(base, mesh.faces, pose_carves(head.carves, None))
    progress(0.7, f"Writing {path.name}")
    if suffix == ".obj":
        posed = anim.vertices(avatar.expression)
        files = write_obj(path, posed, faces, mesh.uvs, None, texture, name=avatar.name,
                          parts=parts, part_weights=avatar.expression)
    else:
        # The morph targets are offsets from the animator's zero-weight mesh, so that is the base.
        files = [write_glb(path, base, faces, mesh.uvs, None,
                           anim.morph_targets(), list(EXPRESSION_NAMES), avatar.expression,
                           texture, name=avatar.name, cancelled=cancelled, parts=parts,
                           part_weights=avatar.expression, extend=extend)]
    progress(1.0, "Done")
    return files


def _head_parts(avatar):
    """The eyes and mouth interior (core.head.build.HeadParts) of the avatar's identity: gaze,
    blink and jaw motion are their parts' morph targets."""
    from .head.build import build_head_parts

    return build_head_parts(avatar.identity, getattr(avatar, "eyes", None))


def _hair_parts(avatar, model, mesh, anim) -> list:
    """[the avatar's hair as a PartMesh], or [] when bald or the mesh has no template frame."""
    from .head.hair import build_hair, hair_part

    style = getattr(avatar, "hair", None)
    if style is None or style.style == "bald" or getattr(mesh, "template", None) is None:
        return []
    hair = build_hair(model, style, mesh, anim)
    return [] if hair.empty else [hair_part(hair)]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "avatar"
