"""Training captions written from MEASURED attribute z-scores: varied wording, order, degree
words and detail, several attributes mixed. Only the first `CAPTION_SYNONYMS` synonyms of each
word list are used, so the held-out prompt suite (other synonyms, other sentence frames) is
wording training never saw.
"""
from __future__ import annotations

import numpy as np

from .attributes import INDEX, SCALARS
from .lexicon import CAPTION_DEGREES, CAPTION_SYNONYMS, SCALAR_WORDS
from .reading import EYE_COLOURS, HAIR_COLOURS

# written into the training-condition cache's name: captions from an older captioner are rebuilt
CAPTION_VERSION = 2

_FRAMES = ("{x}", "a face with {x}", "someone with {x}", "a person with {x}", "portrait of a person with {x}",
           "{x}.", "an avatar with {x}")
_HAIR_ONLY = ("hair_lightness", "hair_redness", "grey_hair", "eye_lightness", "eye_blueness")
_STYLE_PHRASE = {"bald": "a bald head", "buzz": "a buzz cut", "short": "short hair",
                 "medium": "shoulder-length hair", "long": "long hair", "tied": "hair in a ponytail"}


def _degree(z: float) -> str | None:
    a = abs(z)
    if a < 0.3:
        return None
    for word, level in reversed(CAPTION_DEGREES):
        if a >= level - 0.3:
            return word
    return "slightly"


def _closest(table: dict[str, dict[str, float]], z: np.ndarray, attrs: tuple[str, ...],
             rng: np.random.Generator) -> str:
    names = list(table)
    err = [sum((table[n].get(a, 0.0) - z[INDEX[a]]) ** 2 for a in attrs) for n in names]
    # the nearest name only: the second nearest contradicted the face's own colour (iris blueness
    # took the wrong sign in 23% of the captions that named it)
    return names[int(np.argmin(err))]


def phrases_for(z: np.ndarray, style: str, rng: np.random.Generator, n: int) -> list[str]:
    """Up to n phrases describing the most distinctive (or a random mix of) attributes."""
    scalars = [a for a in SCALARS if a not in _HAIR_ONLY and a != "hair_length"]
    weight = np.array([0.15 + abs(z[INDEX[a]]) ** 2 for a in scalars])
    order = rng.choice(len(scalars), size=len(scalars), replace=False, p=weight / weight.sum())
    out: list[str] = []
    nouns_used: set[str] = set()
    for k in order:
        if len(out) >= n:
            break
        attr = scalars[int(k)]
        v = float(z[INDEX[attr]])
        nouns, hi, lo = SCALAR_WORDS[attr]
        noun = nouns[int(rng.integers(min(len(nouns), CAPTION_SYNONYMS)))]
        if (noun, attr) in nouns_used:
            continue
        deg = _degree(v)
        if deg is None:
            if rng.random() < 0.3 and attr in GEOMETRY_AVERAGE:
                out.append(f"{rng.choice(['an average', 'a normal'])} {noun}" if not noun.endswith("s")
                           else f"average {noun}")
            continue
        words = hi if v > 0 else lo
        if not words:
            continue
        adj = words[int(rng.integers(min(len(words), CAPTION_SYNONYMS)))]
        if attr == "facial_hair":
            out.append("a beard" if v > 1.0 else "stubble" if v > 0.3 else "clean-shaven")
        elif attr == "freckles":
            # the reading: "freckles" +1.4, "slightly freckled" +0.7, "no freckles" -1.0; a face a
            # little below the median has no phrase the reader would take the right way
            if v >= 1.1:
                out.append(str(rng.choice(["freckles", "freckled skin"])))
            elif v > 0:
                out.append("slightly freckled skin")
            elif v <= -0.8:
                out.append("no freckles")
            else:
                continue
        else:
            article = "a " if not noun.endswith("s") and deg in ("", "very", "slightly") and rng.random() < 0.7 else ""
            out.append(f"{article}{deg + ' ' if deg else ''}{adj} {noun}")
        nouns_used.add((noun, attr))
    # hair and eyes: colour words from the nearest named colour
    if rng.random() < 0.6:
        colour = _closest(HAIR_COLOURS, z, ("hair_lightness", "hair_redness", "grey_hair"), rng)
        hair = _STYLE_PHRASE[style]
        if style == "bald":
            out.append(hair)
        elif rng.random() < 0.5 and "hair" in hair:
            out.append(hair.replace("hair", f"{colour} hair"))
        else:
            out.append(f"{colour} hair" if rng.random() < 0.5 else hair)
    if rng.random() < 0.35:
        colour = _closest(EYE_COLOURS, z, ("eye_lightness", "eye_blueness"), rng)
        out.append(f"{colour} eyes")
    rng.shuffle(out)
    return out


GEOMETRY_AVERAGE = {"face_length", "face_width", "nose_length", "nose_width", "mouth_width",
                    "forehead", "chin", "eye_size"}


def caption(z: np.ndarray, style: str, rng: np.random.Generator) -> str:
    """One caption: 0 (10%: the empty prompt) to ~8 phrases in a random frame."""
    r = rng.random()
    n = 0 if r < 0.08 else int(rng.integers(1, 4)) if r < 0.7 else int(rng.integers(4, 9))
    if n == 0:
        return ""
    parts = phrases_for(z, style, rng, n)
    if not parts:
        return ""
    if len(parts) == 1:
        body = parts[0]
    else:
        joiner = ", " if rng.random() < 0.6 else " and "
        body = joiner.join(parts[:-1]) + (" and " if rng.random() < 0.7 else ", ") + parts[-1]
    return str(rng.choice(_FRAMES)).format(x=body)
