"""The .likeness project file: a zip of project.json + npy arrays + PNG textures.

Arrays are stored with np.save and read with allow_pickle=False, JSON with the json module,
images with Pillow: nothing in a project file is ever unpickled or executed. Saving writes a
temporary file beside the target, fsyncs it and os.replace()s it, so a crash mid-save never
leaves a half-written project where the old one was.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .atomic import write_atomic
from .avatar import Avatar, ViewSettings
from .expressions import EXPRESSION_NAMES
from .head.settings import EyeSettings, HairStyle

# 1: identity, expression, texture, view. 2: + appearance (texture) code, eyes, hair; a version 1
# file opens with the mean appearance and default eyes and hair. 3: + an optional paint/ folder
# (core.paint.files: layers.json + one PNG per layer); older files open with no paint layers.
# 4: + optional animation clips (core.animation.files: clips/clip_NNN.json, the clip file's
# bytes), listed in project.json's "clips"; older files open with no clips.
FORMAT_VERSION = 4
SUFFIX = ".likeness"
MANIFEST = "project.json"
_MAX_TEXTURE_PIXELS = 8192 * 8192
# Largest uncompressed size accepted per member, checked against the zip directory before
# reading, so a damaged or hostile file (a zip bomb) cannot make the app allocate gigabytes.
_MAX_MEMBER_BYTES = {".json": 1 << 20, ".npy": 1 << 20, ".png": 128 << 20}
_MAX_MEMBERS = 256
_MAX_CLIPS = 64
_MAX_CLIP_BYTES = 192 << 20          # one clip member (samples + audio, base64 in JSON)
_ARRAY_LIMITS = {"identity": 4096, "expression": 1024, "appearance": 4096}   # elements
_CODE_RANGE = 1e4   # |identity|, |appearance| beyond this is damage, not a face


class ProjectError(Exception):
    """A project file cannot be read or written; the message is meant for the user."""


def app_version() -> str:
    try:
        from importlib.metadata import version
        return version("likeness")
    except Exception:
        return "0.1.0"


def save_project(avatar: Avatar, path: str | os.PathLike) -> Path:
    """Write `avatar` to `path` atomically; returns the path. Raises ProjectError."""
    path = Path(path)
    manifest = {
        "format": "likeness-project",
        "format_version": FORMAT_VERSION,
        "app_version": app_version(),
        "name": avatar.name,
        "expression_names": list(EXPRESSION_NAMES),
        "arrays": {"identity": "identity.npy", "expression": "expression.npy",
                   **({"appearance": "appearance.npy"} if avatar.appearance is not None else {})},
        "textures": {"albedo": "textures/albedo.png"} if avatar.texture is not None else {},
        "view": avatar.view.to_dict(),
        "eyes": avatar.eyes.to_dict(),
        "hair": avatar.hair.to_dict(),
        # Human-readable copy of the non-zero weights; the npy array is authoritative.
        "expression_summary": {n: round(float(w), 4) for n, w in zip(EXPRESSION_NAMES, avatar.expression) if w},
    }
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=1) as pool:
        # the base texture encodes while the paint layers do (PNG encoding releases the GIL)
        albedo = pool.submit(_png_bytes, avatar.texture) if avatar.texture is not None else None
        paint = _paint_payload(avatar, manifest)
        albedo = None if albedo is None else albedo.result()
    clips = _clip_payload(avatar, manifest)
    payload = {
        MANIFEST: json.dumps(manifest, indent=2).encode("utf-8"),
        "identity.npy": _npy_bytes(avatar.identity),
        "expression.npy": _npy_bytes(avatar.expression),
    }
    if avatar.appearance is not None:
        payload["appearance.npy"] = _npy_bytes(avatar.appearance)
    if avatar.texture is not None:
        payload["textures/albedo.png"] = albedo
    payload.update(paint)
    payload.update(clips)

    def write(f) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for member, data in payload.items():
                # PNG is already compressed; deflating it again only costs time.
                kind = zipfile.ZIP_STORED if member.endswith(".png") else zipfile.ZIP_DEFLATED
                zf.writestr(member, data, compress_type=kind)

    write_atomic(path, write, ProjectError, "save")
    return path


def load_project(path: str | os.PathLike, identity_dim: int | None = None) -> Avatar:
    """Read a .likeness file. Raises ProjectError with a message saying what is wrong.

    `identity_dim`, when given, is the face model's latent size the identity must match.
    """
    path = Path(path)
    if not path.exists():
        raise ProjectError(f"{path} does not exist.")
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ProjectError(f"{path.name} is not a Likeness project (it is not a zip archive; "
                           f"the file may be damaged or of another type).") from None
    except OSError as exc:
        raise ProjectError(f"Cannot read {path}: {exc.strerror or exc}") from exc
    except Exception as exc:  # a damaged zip directory (bad offsets, sizes, encodings)
        raise ProjectError(f"{path.name} is damaged: its zip directory cannot be read ({exc}).") from None
    with zf:
        if len(zf.infolist()) > _MAX_MEMBERS:
            raise ProjectError(f"{path.name} is damaged: it lists {len(zf.infolist())} members.")
        manifest = _read_manifest(zf, path)
        _validate_manifest(manifest, path)
        try:
            view = ViewSettings.from_dict(manifest.get("view") or {})
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ProjectError(f"{path.name} has invalid view settings: {exc}") from None
        arrays = manifest.get("arrays") or {}
        identity = _read_npy(zf, path, arrays.get("identity", "identity.npy"), "identity code")
        expression = _read_npy(zf, path, arrays.get("expression", "expression.npy"), "expression weights")
        if identity.ndim != 1 or identity.size == 0:
            raise ProjectError(f"{path.name} is damaged: the identity code has shape {identity.shape}, "
                               f"expected a 1-D vector.")
        if identity_dim is not None and identity.size != identity_dim:
            raise ProjectError(f"{path.name} was made with a face model of {identity.size} identity "
                               f"dimensions; this face model has {identity_dim}.")
        names = manifest.get("expression_names", list(EXPRESSION_NAMES))
        if expression.shape != (len(names),):
            raise ProjectError(f"{path.name} is damaged: expression weights have shape {expression.shape}, "
                               f"expected ({len(names)},).")
        if list(names) != list(EXPRESSION_NAMES):
            # Reorder by name so files stay readable if the expression set is ever reordered.
            by_name = dict(zip(names, expression))
            expression = np.array([by_name.get(n, 0.0) for n in EXPRESSION_NAMES], np.float32)
        if not (np.all(np.isfinite(identity)) and np.all(np.isfinite(expression))):
            raise ProjectError(f"{path.name} is damaged: its codes contain NaN or infinity.")
        if np.abs(identity).max() > _CODE_RANGE or np.abs(expression).max() > 100:
            raise ProjectError(f"{path.name} is damaged: its identity code or expression weights are "
                               f"far outside any face (|identity| <= {_CODE_RANGE:g}, |weights| <= 100).")
        appearance = None
        if "appearance" in arrays:
            appearance = _read_npy(zf, path, arrays["appearance"], "appearance code")
            if (appearance.ndim != 1 or not 0 < appearance.size <= 4096 or not np.all(np.isfinite(appearance))
                    or np.abs(appearance).max() > _CODE_RANGE):
                raise ProjectError(f"{path.name} is damaged: the appearance code has shape "
                                   f"{appearance.shape} or non-finite values; expected a 1-D vector.")
        try:
            eyes = EyeSettings.from_dict(manifest.get("eyes") or {})
            hair = HairStyle.from_dict(manifest.get("hair") or {})
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ProjectError(f"{path.name} has invalid eye or hair settings: {exc}") from None
        texture = None
        textures = manifest.get("textures") or {}
        if "albedo" in textures:
            texture = _read_png(zf, path, textures["albedo"])
        paint = _read_paint(zf, path, manifest.get("paint"))
        clips = _read_clips(zf, path, manifest.get("clips"))
    try:
        avatar = Avatar(identity.astype(np.float32), expression.astype(np.float32), texture,
                        name=str(manifest.get("name") or path.stem), view=view,
                        appearance=None if appearance is None else appearance.astype(np.float32),
                        eyes=eyes, hair=hair, clips=clips)
    except (TypeError, ValueError) as exc:
        raise ProjectError(f"{path.name} is damaged: {exc}") from None
    if paint is not None:
        from .paint.avatar import attach_paint
        attach_paint(avatar, paint)
    return avatar


def _paint_payload(avatar: Avatar, manifest: dict) -> dict[str, bytes]:
    """The paint/ members of the avatar's paint layers (none without layers); names them in
    `manifest`."""
    from .paint.avatar import paint_of
    from .paint.files import LAYERS_JSON, paint_members
    stack = paint_of(avatar)
    if stack is None or not stack.layers:
        return {}
    manifest["paint"] = LAYERS_JSON
    return paint_members(stack)


def _read_paint(zf: zipfile.ZipFile, path: Path, member):
    """The paint layer stack named by project.json's "paint" (None: the file has none)."""
    if member is None:
        return None
    from .paint import PaintError
    from .paint.files import LAYERS_JSON, read_paint
    if member != LAYERS_JSON:
        raise ProjectError(f"{path.name} is damaged: its paint layers are described in {member!r}, "
                           f"expected {LAYERS_JSON}.")

    def read(name: str) -> bytes:
        if name not in zf.NameToInfo:
            raise KeyError(name)
        return _read_member(zf, path, name, "paint layer")
    try:
        return read_paint(read, path.name)
    except PaintError as exc:
        raise ProjectError(str(exc)) from None


def _clip_payload(avatar: Avatar, manifest: dict) -> dict[str, bytes]:
    """clips/clip_NNN.json per clip of the avatar (none without clips); lists them in `manifest`."""
    clips = getattr(avatar, "clips", [])
    if not clips:
        return {}
    from .animation.files import clip_to_bytes
    names = [f"clips/clip_{i:03d}.json" for i in range(len(clips))]
    manifest["clips"] = names
    return {n: clip_to_bytes(c) for n, c in zip(names, clips)}


def _read_clips(zf: zipfile.ZipFile, path: Path, members) -> list:
    """The clips named by project.json's "clips" ([] when absent: formats 1-3)."""
    if members is None:
        return []
    if not (isinstance(members, list) and len(members) <= _MAX_CLIPS
            and all(isinstance(m, str) and m.startswith("clips/") and m.endswith(".json")
                    and len(m) <= _MEMBER_NAME[1] for m in members)):
        raise ProjectError(f"{path.name} is damaged: {MANIFEST} field 'clips' should be a list of at "
                           f"most {_MAX_CLIPS} clips/*.json members.")
    from .animation.files import ClipError, clip_from_bytes
    clips = []
    for i, member in enumerate(members):
        raw = _read_member(zf, path, member, f"animation clip {i + 1}", limit=_MAX_CLIP_BYTES)
        try:
            clips.append(clip_from_bytes(raw, f"{path.name}: {member}"))
        except ClipError as exc:
            raise ProjectError(str(exc)) from None
    return clips


# --- manifest schema: types, lengths and ranges, checked before any value is used --------------
_NAME = (str, 256)
_MEMBER_NAME = (str, 512)


def _validate_manifest(m: dict, path: Path) -> None:
    """Raise ProjectError unless project.json has the documented types: every field optional
    except format/format_version (checked by _read_manifest); unknown fields are ignored so a
    later minor addition still opens."""
    def bad(field: str, want: str) -> ProjectError:
        return ProjectError(f"{path.name} is damaged: {MANIFEST} field '{field}' should be {want}, "
                            f"found {_describe(m.get(field) if '.' not in field else None)}.")

    if m["format_version"] < 1 or isinstance(m["format_version"], bool):
        raise bad("format_version", "a positive integer")
    for field, (kind, limit) in (("name", _NAME), ("app_version", _NAME)):
        if field in m and m[field] is not None and not (isinstance(m[field], kind) and len(m[field]) <= limit):
            raise bad(field, f"a text of at most {limit} characters")
    names = m.get("expression_names", EXPRESSION_NAMES)
    if not (isinstance(names, (list, tuple)) and 0 < len(names) <= _ARRAY_LIMITS["expression"]
            and all(isinstance(n, str) and len(n) <= 64 for n in names)):
        raise bad("expression_names", "a list of expression names")
    for field, allowed in (("arrays", ("identity", "expression", "appearance")), ("textures", ("albedo",))):
        table = m.get(field)
        if table is None:
            continue
        if not (isinstance(table, dict) and all(isinstance(v, str) and 0 < len(v) <= _MEMBER_NAME[1]
                                                for v in table.values())):
            raise bad(field, "a mapping of names to archive members")
    for field in ("view", "eyes", "hair", "expression_summary"):
        if m.get(field) is not None and not isinstance(m[field], dict):
            raise bad(field, "a mapping")


def _describe(value) -> str:
    kind = type(value).__name__
    text = repr(value)
    return f"{kind} {text[:40]}{'...' if len(text) > 40 else ''}"


def _read_manifest(zf: zipfile.ZipFile, path: Path) -> dict:
    if MANIFEST not in zf.NameToInfo:
        raise ProjectError(f"{path.name} is not a Likeness project: it has no {MANIFEST}.")
    raw = _read_member(zf, path, MANIFEST, "project description")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: JSONDecodeError, huge ints
        raise ProjectError(f"{path.name} is damaged: {MANIFEST} is not valid JSON ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "likeness-project":
        raise ProjectError(f"{path.name} is not a Likeness project ({MANIFEST} has no likeness-project header).")
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise ProjectError(f"{path.name} is damaged: format_version is missing.")
    if version > FORMAT_VERSION:
        raise ProjectError(f"{path.name} was saved by a newer Likeness (file format {version}, app "
                           f"{manifest.get('app_version', '?')}); this version reads format "
                           f"{FORMAT_VERSION} and older. Please update Likeness.")
    return manifest


def _read_member(zf: zipfile.ZipFile, path: Path, member: str, what: str, limit: int | None = None) -> bytes:
    try:
        info = zf.getinfo(member)
    except KeyError:
        raise ProjectError(f"{path.name} is damaged: the {what} ({member}) is missing.") from None
    if limit is None:
        limit = _MAX_MEMBER_BYTES.get(Path(member).suffix.lower(), 1 << 20)
    if info.file_size > limit:
        raise ProjectError(f"{path.name} is damaged: the {what} ({member}) claims {info.file_size} "
                           f"bytes, more than the {limit} a project member may hold.")
    try:
        return zf.read(info)
    except Exception as exc:  # bad CRC, zlib stream errors, unknown compression, encryption, EOF
        raise ProjectError(f"{path.name} is damaged: cannot read the {what} ({member}: "
                           f"{type(exc).__name__}: {exc}).") from None


def _read_npy(zf: zipfile.ZipFile, path: Path, member: str, what: str) -> np.ndarray:
    data = _read_member(zf, path, member, what)
    try:
        # The header's declared shape decides what np.load allocates: check it against the bytes
        # actually present first. Header parsing itself can fail many ways (it is a Python literal).
        buf = io.BytesIO(data)
        version = np.lib.format.read_magic(buf)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"unsupported npy version {version}")
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(buf)
        if dtype.hasobject or np.prod(shape, dtype=np.float64) * dtype.itemsize > len(data):
            raise ValueError(f"the header declares {shape} {dtype} but the member holds {len(data)} bytes")
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:
        raise ProjectError(f"{path.name} is damaged: the {what} is not a valid array "
                           f"({type(exc).__name__}: {exc}).") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise ProjectError(f"{path.name} is damaged: the {what} is not numeric.")
    return arr


def _read_png(zf: zipfile.ZipFile, path: Path, member: str) -> np.ndarray:
    from PIL import Image

    data = _read_member(zf, path, member, "texture")
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > _MAX_TEXTURE_PIXELS:
                raise ValueError(f"{im.width}x{im.height} is too large")
            return np.asarray(im.convert("RGB"), np.uint8).copy()
    except Exception as exc:  # Pillow raises many types for corrupt images
        raise ProjectError(f"{path.name} is damaged: the texture ({member}) is not a readable PNG ({exc}).") from None


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def _png_bytes(image: np.ndarray) -> bytes:
    """RGB uint8 -> PNG with OpenCV's speed-tuned defaults (a 1024^2 texture in ~0.06 s of CPU;
    Pillow's default deflate takes 0.3 s and saves little on a photo-like texture)."""
    from .paint.files import png_bytes

    return png_bytes(np.asarray(image, np.uint8)[..., :3])

