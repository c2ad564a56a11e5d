"""The one error type of the painting core: its message is a sentence for the user."""
from __future__ import annotations


class PaintError(Exception):
    """A paint file or operation cannot be done; str(exc) says why, for the user."""
