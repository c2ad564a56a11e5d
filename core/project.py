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
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .avatar import Avatar, ViewSettings
from .expressions import EXPRESSION_NAMES
from .head.settings import EyeSettings, HairStyle

# 1: identity, expression, texture, view. 2: + appearance (texture) code, eyes, hair; a version 1
# file opens with the mean appearance and default eyes and hair. 3: + an optional paint/ folder
# (core.paint.files: layers.json + one PNG per layer); older files open with no paint layers.
FORMAT_VERSION = 3
SUFFIX = ".likeness"
MANIFEST = "project.json"
_MAX_TEXTURE_PIXELS = 8192 * 8192


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
    paint = _paint_payload(avatar, manifest)
    payload = {
        MANIFEST: json.dumps(manifest, indent=2).encode("utf-8"),
        "identity.npy": _npy_bytes(avatar.identity),
        "expression.npy": _npy_bytes(avatar.expression),
    }
    if avatar.appearance is not None:
        payload["appearance.npy"] = _npy_bytes(avatar.appearance)
    if avatar.texture is not None:
        payload["textures/albedo.png"] = _png_bytes(avatar.texture)
    payload.update(paint)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise ProjectError(f"Cannot save to {path}: the folder {directory} does not exist.")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for member, data in payload.items():
                    # PNG is already compressed; deflating it again only costs time.
                    kind = zipfile.ZIP_STORED if member.endswith(".png") else zipfile.ZIP_DEFLATED
                    zf.writestr(member, data, compress_type=kind)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _unlink_quietly(tmp)
        raise ProjectError(f"Cannot save {path}: {exc.strerror or exc}") from exc
    except BaseException:
        _unlink_quietly(tmp)
        raise
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
    with zf:
        manifest = _read_manifest(zf, path)
        try:
            view = ViewSettings.from_dict(manifest.get("view") or {})
        except (TypeError, ValueError) as exc:
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
        appearance = None
        if "appearance" in arrays:
            appearance = _read_npy(zf, path, arrays["appearance"], "appearance code")
            if appearance.ndim != 1 or not 0 < appearance.size <= 4096 or not np.all(np.isfinite(appearance)):
                raise ProjectError(f"{path.name} is damaged: the appearance code has shape "
                                   f"{appearance.shape} or non-finite values; expected a 1-D vector.")
        try:
            eyes = EyeSettings.from_dict(manifest.get("eyes") or {})
            hair = HairStyle.from_dict(manifest.get("hair") or {})
        except (TypeError, ValueError) as exc:
            raise ProjectError(f"{path.name} has invalid eye or hair settings: {exc}") from None
        texture = None
        textures = manifest.get("textures") or {}
        if "albedo" in textures:
            texture = _read_png(zf, path, textures["albedo"])
        paint = _read_paint(zf, path, manifest.get("paint"))
    avatar = Avatar(identity.astype(np.float32), expression.astype(np.float32), texture,
                    name=str(manifest.get("name") or path.stem), view=view,
                    appearance=None if appearance is None else appearance.astype(np.float32),
                    eyes=eyes, hair=hair)
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


def _read_manifest(zf: zipfile.ZipFile, path: Path) -> dict:
    try:
        raw = zf.read(MANIFEST)
    except KeyError:
        raise ProjectError(f"{path.name} is not a Likeness project: it has no {MANIFEST}.") from None
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ProjectError(f"{path.name} is damaged: cannot read {MANIFEST} ({exc}).") from None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
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


def _read_member(zf: zipfile.ZipFile, path: Path, member: str, what: str) -> bytes:
    try:
        return zf.read(member)
    except KeyError:
        raise ProjectError(f"{path.name} is damaged: the {what} ({member}) is missing.") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ProjectError(f"{path.name} is damaged: cannot read the {what} ({member}: {exc}).") from None


def _read_npy(zf: zipfile.ZipFile, path: Path, member: str, what: str) -> np.ndarray:
    data = _read_member(zf, path, member, what)
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ProjectError(f"{path.name} is damaged: the {what} is not a valid array ({exc}).") from None
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
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image, "RGB").save(buf, format="PNG")
    return buf.getvalue()


def _unlink_quietly(p: str) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass
