"""The complete head around the face model's skin: eyes, teeth and mouth interior, hair."""
from .settings import HAIR_STYLES, EyeSettings, HairStyle

__all__ = ["EyeSettings", "HairStyle", "HAIR_STYLES"]
