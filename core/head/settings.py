"""Per-avatar settings of the head's parts: eyes and hair. Saved in the project file.

Frozen dataclasses (like `core.avatar.ViewSettings`): validated on construction, `to_dict` for
JSON, `from_dict` ignores unknown keys and raises ValueError/TypeError on bad values, so a
damaged project gives one clear message.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

HAIR_STYLES = ("bald", "buzz", "short", "medium", "long", "tied")


def _colour(value, what: str) -> tuple[float, float, float]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise ValueError(f"{what} must be 3 numbers in [0, 1], got {value!r}")
    c = tuple(float(x) for x in value)
    if len(c) != 3 or not all(0.0 <= x <= 1.0 for x in c):
        raise ValueError(f"{what} must be 3 numbers in [0, 1], got {value!r}")
    return c


def _unit(value, what: str, lo: float = 0.0, hi: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    v = float(value)
    if not lo <= v <= hi:
        raise ValueError(f"{what} must be in [{lo}, {hi}], got {value!r}")
    return v


class _Settings:
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)  # type: ignore[call-overload]
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        if not isinstance(d, dict):
            raise ValueError(f"expected a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class EyeSettings(_Settings):
    """Iris colour (linear-ish RGB in [0, 1]) and pupil size (fraction of the iris radius)."""
    iris_colour: tuple[float, float, float] = (0.30, 0.20, 0.11)
    pupil_size: float = 0.42

    def __post_init__(self) -> None:
        object.__setattr__(self, "iris_colour", _colour(self.iris_colour, "iris colour"))
        object.__setattr__(self, "pupil_size", _unit(self.pupil_size, "pupil size", 0.1, 0.9))


@dataclass(frozen=True)
class HairStyle(_Settings):
    """Hair of an avatar.

    style: one of HAIR_STYLES. length: 0..1 scales the style's length range (a buzz cut's 0.3 cm
    to a long style's shoulder length). hairline: -1..1 moves the front hairline down (-) or back
    (+, receding). colour: base RGB in [0, 1]; grey: 0..1 mixes in grey/white strands.
    """
    style: str = "short"
    length: float = 0.5
    hairline: float = 0.0
    colour: tuple[float, float, float] = (0.23, 0.15, 0.09)
    grey: float = 0.0

    def __post_init__(self) -> None:
        if self.style not in HAIR_STYLES:
            raise ValueError(f"hair style must be one of {HAIR_STYLES}, got {self.style!r}")
        object.__setattr__(self, "length", _unit(self.length, "hair length"))
        object.__setattr__(self, "hairline", _unit(self.hairline, "hairline", -1.0, 1.0))
        object.__setattr__(self, "colour", _colour(self.colour, "hair colour"))
        object.__setattr__(self, "grey", _unit(self.grey, "grey"))


__all__ = ["EyeSettings", "HairStyle", "HAIR_STYLES"]
