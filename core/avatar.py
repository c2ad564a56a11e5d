"""The avatar document: what a project saves, what the panels edit, what the viewport shows.

Plain Python, no Qt (napari style): widgets observe it through `avatar.events` and change it
only through its setters, so data flows one way (widget -> setter -> event -> every view).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Callable

import numpy as np

from .expressions import EXPRESSION_NAMES, INDEX, NUM_EXPRESSIONS
from .head.settings import EyeSettings, HairStyle

VIEW_MODES = ("shaded", "textured", "normals", "wireframe")
GEOMETRIES = ("mesh", "sdf")
LIGHTINGS = ("studio", "ibl")  # key/fill/rim rig, or image-based (SH9 environment)


@dataclass(frozen=True)
class ViewSettings:
    """How the avatar is shown; saved with the project so it reopens looking the same."""
    mode: str = "textured"
    geometry: str = "mesh"
    background: tuple[float, float, float] = (0.18, 0.19, 0.22)
    show_landmarks: bool = False
    lighting: str = "studio"

    def __post_init__(self) -> None:
        if self.mode not in VIEW_MODES:
            raise ValueError(f"view mode must be one of {VIEW_MODES}, got {self.mode!r}")
        if self.geometry not in GEOMETRIES:
            raise ValueError(f"geometry must be one of {GEOMETRIES}, got {self.geometry!r}")
        if self.lighting not in LIGHTINGS:
            raise ValueError(f"lighting must be one of {LIGHTINGS}, got {self.lighting!r}")
        bg = tuple(float(c) for c in self.background)
        if len(bg) != 3 or not all(0.0 <= c <= 1.0 for c in bg):
            raise ValueError(f"background must be 3 numbers in [0, 1], got {self.background!r}")
        object.__setattr__(self, "background", bg)
        object.__setattr__(self, "show_landmarks", bool(self.show_landmarks))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["background"] = list(self.background)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ViewSettings":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class EventEmitter:
    """Named plain-Python callbacks: connect(event, fn); fn(avatar) runs on emit."""

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Callable[..., None]]] = {}

    def connect(self, event: str, fn: Callable[..., None]) -> Callable[[], None]:
        self._callbacks.setdefault(event, []).append(fn)
        return lambda: self.disconnect(event, fn)

    def disconnect(self, event: str, fn: Callable[..., None]) -> None:
        if fn in self._callbacks.get(event, []):
            self._callbacks[event].remove(fn)

    def emit(self, event: str, *args: Any) -> None:
        for fn in list(self._callbacks.get(event, ())):
            fn(*args)


class Avatar:
    """Identity code, 53 expression weights, appearance (texture) code, texture, eyes, hair, name
    and view settings, plus a dirty flag.

    The appearance code is the avatar's coordinates in the learned texture space
    (core.appearance); an explicit `texture` (a projected photo, a loaded painting) overrides
    what the code decodes to. `appearance` None means the mean appearance.

    Events (callback arguments): "identity" (avatar), "expression" (avatar), "texture" (avatar),
    "appearance" (avatar), "eyes" (avatar), "hair" (avatar), "name" (avatar), "view" (avatar),
    "dirty" (avatar), "replaced" (avatar: everything changed), "head_pose" (avatar), "clips" (avatar:
    the clip list changed), "clip" (avatar, clip: one clip edited in place). The head pose (yaw, pitch, roll in degrees) is live state for
    puppeteering: it is not saved and does not mark the project dirty.
    """

    def __init__(self, identity: np.ndarray, expression: np.ndarray | None = None,
                 texture: np.ndarray | None = None, name: str = "Untitled",
                 view: ViewSettings | None = None, appearance: np.ndarray | None = None,
                 eyes: EyeSettings | None = None, hair: HairStyle | None = None,
                 clips: list | None = None) -> None:
        self.events = EventEmitter()
        self._clips = list(clips or [])   # core.animation.Clip, saved with the project
        self._appearance = None if appearance is None else _code_array(appearance, "appearance code")
        self._eyes = eyes or EyeSettings()
        self._hair = hair or HairStyle()
        self._identity = _identity_array(identity)
        self._expression = _expression_array(np.zeros(NUM_EXPRESSIONS) if expression is None else expression)
        self._texture = None if texture is None else _texture_array(texture)
        self._name = str(name)
        self._view = view or ViewSettings()
        self._head_pose = np.zeros(3, np.float32)
        self._dirty = False

    # --- read ---------------------------------------------------------------------------------
    @property
    def identity(self) -> np.ndarray:
        return self._identity.copy()

    @property
    def head_pose(self) -> np.ndarray:
        """(yaw, pitch, roll) in degrees, conventions of core.tracking.pose."""
        return self._head_pose.copy()

    @property
    def expression(self) -> np.ndarray:
        return self._expression.copy()

    def weight(self, name: str) -> float:
        return float(self._expression[INDEX[name]])

    @property
    def texture(self) -> np.ndarray | None:
        """(H, W, 3) uint8, row 0 at the top of the image; None means the default skin."""
        return self._texture

    @property
    def appearance(self) -> np.ndarray | None:
        """Texture code (K,) float32, or None for the mean appearance."""
        return None if self._appearance is None else self._appearance.copy()

    @property
    def eyes(self) -> EyeSettings:
        return self._eyes

    @property
    def hair(self) -> HairStyle:
        return self._hair

    @property
    def name(self) -> str:
        return self._name

    @property
    def view(self) -> ViewSettings:
        return self._view

    @property
    def dirty(self) -> bool:
        return self._dirty

    @property
    def clips(self) -> list:
        """The project's animation clips (core.animation.Clip), in order; a copy of the list."""
        return list(self._clips)

    # --- write --------------------------------------------------------------------------------
    def set_identity(self, identity: np.ndarray) -> None:
        new = _identity_array(identity)
        if new.shape == self._identity.shape and np.array_equal(new, self._identity):
            return
        self._identity = new
        self._changed("identity")

    def set_expression(self, weights: np.ndarray) -> None:
        new = _expression_array(weights)
        if np.array_equal(new, self._expression):
            return
        self._expression = new
        self._changed("expression")

    def set_head_pose(self, yaw_pitch_roll) -> None:
        pose = np.asarray(yaw_pitch_roll, np.float32).reshape(3)
        if not np.all(np.isfinite(pose)):
            raise ValueError(f"head pose must be 3 finite angles, got {yaw_pitch_roll!r}")
        pose = np.clip(pose, -90.0, 90.0)
        if not np.array_equal(pose, self._head_pose):
            self._head_pose = pose
            self.events.emit("head_pose", self)

    def set_weight(self, name: str, value: float) -> None:
        if name not in INDEX:
            raise ValueError(f"unknown expression '{name}'")
        w = self._expression.copy()
        w[INDEX[name]] = value
        self.set_expression(w)

    def set_texture(self, texture: np.ndarray | None) -> None:
        self._texture = None if texture is None else _texture_array(texture)
        self._changed("texture")

    def set_appearance(self, code: np.ndarray | None) -> None:
        new = None if code is None else _code_array(code, "appearance code")
        old = self._appearance
        if (new is None and old is None) or (new is not None and old is not None
                                             and new.shape == old.shape and np.array_equal(new, old)):
            return
        self._appearance = new
        self._changed("appearance")

    def set_eyes(self, **changes: Any) -> None:
        """Change eye settings, e.g. set_eyes(iris_colour=(0.2, 0.4, 0.6))."""
        new = replace(self._eyes, **changes)
        if new != self._eyes:
            self._eyes = new
            self._changed("eyes")

    def set_hair(self, hair: HairStyle | None = None, **changes: Any) -> None:
        """Replace the hair (a HairStyle) or change fields, e.g. set_hair(style="long")."""
        new = replace(hair or self._hair, **changes)
        if new != self._hair:
            self._hair = new
            self._changed("hair")

    def set_name(self, name: str) -> None:
        if str(name) != self._name:
            self._name = str(name)
            self._changed("name")

    def set_view(self, **changes: Any) -> None:
        """Change view settings, e.g. set_view(mode="wireframe"); view changes mark the project
        dirty too because they are saved with it."""
        new = replace(self._view, **changes)
        if new != self._view:
            self._view = new
            self._changed("view")

    def set_clips(self, clips: list) -> None:
        """Replace the clip list (add, remove, reorder); editing a clip in place is followed by
        clip_changed(clip)."""
        self._clips = list(clips)
        self._changed("clips")

    def add_clip(self, clip) -> int:
        self._clips.append(clip)
        self._changed("clips")
        return len(self._clips) - 1

    def clip_changed(self, clip) -> None:
        """A clip of this project was edited in place (keys, trim, smoothing)."""
        self.events.emit("clip", self, clip)
        self.set_dirty(True)

    def set_dirty(self, dirty: bool) -> None:
        if dirty != self._dirty:
            self._dirty = dirty
            self.events.emit("dirty", self)

    def replace_with(self, other: "Avatar") -> None:
        """Take over another document's content (File > Open / New) keeping our observers."""
        self._identity, self._expression = other._identity.copy(), other._expression.copy()
        self._texture, self._name, self._view = other._texture, other._name, other._view
        self._appearance = None if other._appearance is None else other._appearance.copy()
        self._eyes, self._hair = other._eyes, other._hair
        self._clips = list(other._clips)
        self._dirty = other._dirty
        self._head_pose = np.zeros(3, np.float32)
        self.events.emit("replaced", self)
        self.events.emit("dirty", self)

    def _changed(self, event: str) -> None:
        self.events.emit(event, self)
        self.set_dirty(True)

    def __repr__(self) -> str:
        return (f"Avatar(name={self._name!r}, identity_dim={self._identity.size}, "
                f"active_expressions={int(np.count_nonzero(self._expression))}, dirty={self._dirty})")


def _identity_array(identity: np.ndarray) -> np.ndarray:
    a = np.asarray(identity, dtype=np.float32).copy()
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"identity code must be a non-empty 1-D vector, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("identity code contains NaN or infinity")
    return a


def _expression_array(weights: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float32).copy()
    if w.shape != (NUM_EXPRESSIONS,):
        raise ValueError(f"expression weights must have shape ({NUM_EXPRESSIONS},), got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("expression weights contain NaN or infinity")
    return np.clip(w, 0.0, 1.0)


def _code_array(code: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(code, dtype=np.float32).copy()
    if a.ndim != 1 or a.size == 0 or a.size > 4096:
        raise ValueError(f"{what} must be a 1-D vector of 1-4096 values, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what} contains NaN or infinity")
    return a


def _texture_array(texture: np.ndarray) -> np.ndarray:
    t = np.asarray(texture)
    if t.ndim == 3 and t.shape[2] == 4:
        t = t[..., :3]
    if t.ndim != 3 or t.shape[2] != 3 or t.dtype != np.uint8 or min(t.shape[:2]) < 1:
        raise ValueError(f"texture must be an (H, W, 3) uint8 image, got {t.shape} {t.dtype}")
    return np.ascontiguousarray(t)


__all__ = ["Avatar", "ViewSettings", "EyeSettings", "HairStyle", "EventEmitter", "VIEW_MODES",
           "GEOMETRIES", "EXPRESSION_NAMES"]




def load_texture(path) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8; raises ValueError with the file name if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc


def default_texture() -> np.ndarray:
    """The shipped skin texture (resources/textures/default_skin.png); a flat skin tone if the
    file is not there, so the app still starts."""
    from .paths import RESOURCES

    path = RESOURCES / "textures" / "default_skin.png"
    if path.exists():
        return load_texture(path)
    return np.full((256, 256, 3), (224, 172, 150), np.uint8)


def default_avatar(model) -> Avatar:
    """The avatar the app starts on: the model's mean identity, neutral expression."""
    return Avatar(np.asarray(model.mean_identity(), np.float32), name="Default")
