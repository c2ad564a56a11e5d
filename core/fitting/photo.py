"""Reading a user's photo: any size, EXIF orientation honoured, grayscale/alpha made RGB."""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_FIT_SIDE = 1600          # fitting works on at most this many pixels on the long side
MIN_SIDE = 48                # below this there cannot be a usable face
MAX_PIXELS = 400_000_000     # beyond this Pillow would need gigabytes: refuse, clearly


class PhotoError(ValueError):
    """The photo cannot be used; the message is meant for the user."""


def load_photo(source: str | os.PathLike | bytes | np.ndarray, max_side: int = MAX_FIT_SIDE) -> tuple[np.ndarray, float]:
    """(H, W, 3) uint8 RGB, upright, and the scale applied (1.0 unless the photo was larger
    than `max_side`, in which case it is reduced). Raises PhotoError with a readable message."""
    if isinstance(source, np.ndarray):
        img = _array_image(source)
    else:
        img = _open(source)
    w, h = img.size
    if min(w, h) < MIN_SIDE:
        raise PhotoError(f"The photo is only {w}x{h} pixels; a face needs at least {MIN_SIDE} pixels "
                         f"on each side (a portrait of 400 pixels or more works best).")
    scale = 1.0
    if max(w, h) > max_side:
        scale = max_side / max(w, h)
        img.draft("RGB", (int(w * scale) + 1, int(h * scale) + 1))   # JPEG: decode reduced, fast
        img = img.convert("RGB").resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                        Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), np.uint8)), scale


def _open(source) -> Image.Image:
    name = "the image" if isinstance(source, (bytes, bytearray)) else str(source)
    if not isinstance(source, (bytes, bytearray)):
        p = Path(source)
        if not p.exists():
            raise PhotoError(f"{p} does not exist.")
        if p.is_dir():
            raise PhotoError(f"{p} is a folder, not a photo.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            img = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
            if img.size[0] * img.size[1] > MAX_PIXELS:
                raise PhotoError(f"{name} is {img.size[0]}x{img.size[1]} pixels, more than this app "
                                 f"reads ({MAX_PIXELS // 1_000_000} megapixels); scale it down first.")
            if min(img.size) < MIN_SIDE:   # before decoding: a 1 x 10^8 header decodes for seconds
                raise PhotoError(f"{name} is only {img.size[0]}x{img.size[1]} pixels; a face needs at "
                                 f"least {MIN_SIDE} pixels on each side.")
            img = ImageOps.exif_transpose(img)     # phones store portraits sideways + a tag
            img.load()
    except PhotoError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoError(f"{name} is too large to read safely ({exc}).") from None
    except MemoryError:   # a damaged chunk length makes the reader reserve gigabytes
        raise PhotoError(f"{name} is damaged: it declares more data than can be read safely.") from None
    except UnidentifiedImageError:
        raise PhotoError(f"{name} is not an image this app can read (use JPEG or PNG).") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PhotoError(f"{name} is damaged or truncated and cannot be read ({exc}).") from None
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        bg = Image.new("RGB", img.size, (255, 255, 255))   # transparent pixels -> white, not black
        bg.paste(img.convert("RGBA"), mask=img.convert("RGBA").split()[-1])
        img = bg
    elif img.mode in ("I;16", "I;16B", "I", "F"):
        a = np.asarray(img, np.float64)
        a = (a - a.min()) / max(a.max() - a.min(), 1e-9) * 255
        img = Image.fromarray(a.astype(np.uint8))
    return img


def _array_image(a: np.ndarray) -> Image.Image:
    a = np.asarray(a)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, 2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise PhotoError(f"expected an (H, W, 3) image array, got shape {a.shape}")
    if a.dtype != np.uint8:
        a = np.clip(a * (255.0 if a.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(a[..., :3]))
