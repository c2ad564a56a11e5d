"""Reading a prompt: words -> attribute targets (z-scores of the training faces), a hair style,
an expression, and a report of which words were used and which were not understood.

Rule-based over `lexicon.py` (a noun plus the adjectives, degree words and negations around it),
so every target can be traced to the words that set it. Words outside the lexicon are never
guessed: age, gender and ethnicity words are reported as "not modelled"; everything else as
"not understood" (an optional meaning match against the lexicon's phrases through the text
encoder can ground a paraphrase; it reports which phrase it matched).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .lexicon import (AVERAGE_WORDS, DEGREES, EXPRESSION_WORDS, NEGATIONS, PLAIN_LEVEL, PRESENCE,
                      SCALAR_WORDS, STANDALONE, STOPWORDS, STYLE_WORDS, UNGROUNDED_TOPICS)

MAX_PROMPT_CHARS = 1000
HAIR_COLOURS = {"black": {"hair_lightness": -2.0}, "jet-black": {"hair_lightness": -2.3},
                "dark": {"hair_lightness": -1.2}, "brown": {"hair_lightness": -0.5},
                "chestnut": {"hair_lightness": -0.5, "hair_redness": 0.6},
                "blond": {"hair_lightness": 1.6}, "blonde": {"hair_lightness": 1.6},
                "fair": {"hair_lightness": 1.2}, "golden": {"hair_lightness": 1.4},
                "platinum": {"hair_lightness": 2.3}, "light": {"hair_lightness": 1.0},
                "red": {"hair_redness": 1.8}, "ginger": {"hair_redness": 1.8},
                "copper": {"hair_redness": 1.6}, "strawberry": {"hair_redness": 1.0, "hair_lightness": 0.8},
                "auburn": {"hair_redness": 1.2, "hair_lightness": -0.5},
                "grey": {"grey_hair": 1.8}, "gray": {"grey_hair": 1.8}, "silver": {"grey_hair": 2.0},
                "white": {"grey_hair": 2.3}, "greying": {"grey_hair": 1.0}, "graying": {"grey_hair": 1.0}}
EYE_COLOURS = {"blue": {"eye_blueness": 1.7, "eye_lightness": 0.8}, "icy": {"eye_blueness": 2.0, "eye_lightness": 1.5},
               "grey": {"eye_blueness": 1.2}, "gray": {"eye_blueness": 1.2},
               "green": {"eye_lightness": 1.0, "eye_blueness": 0.0}, "hazel": {"eye_blueness": -0.6, "eye_lightness": 0.3},
               "brown": {"eye_blueness": -1.0, "eye_lightness": -0.5}, "amber": {"eye_blueness": -0.8, "eye_lightness": 0.4},
               "dark": {"eye_lightness": -1.4, "eye_blueness": -0.8}, "light": {"eye_lightness": 1.2},
               "pale": {"eye_lightness": 1.4, "eye_blueness": 0.8}}
HAIR_ATTRS = ("hair_lightness", "hair_redness", "grey_hair")
EYE_ATTRS = ("eye_lightness", "eye_blueness")
COMPARATIVES = {"longer": "long", "shorter": "short", "wider": "wide", "narrower": "narrow",
                "fuller": "full", "thinner": "thin", "thicker": "thick", "darker": "dark",
                "lighter": "light", "bigger": "big", "larger": "large", "smaller": "small",
                "higher": "high", "lower": "low", "broader": "broad", "redder": "red",
                "paler": "pale", "bushier": "bushy", "rosier": "rosy", "squarer": "square",
                "flatter": "flat", "stronger": "strong", "weaker": "weak", "fairer": "fair",
                "blonder": "blond", "greyer": "grey", "grayer": "gray", "plumper": "plump",
                "slimmer": "slim", "sharper": "sharp", "softer": "soft", "heavier": "heavy",
                "rounder": "round", "tanner": "tanned", "more": "", "less": ""}
_JOIN = [("wide set", "wide-set"), ("far apart", "far-apart"), ("close set", "close-set"),
         ("close together", "close-together"), ("widely spaced", "widely-spaced"),
         ("closely spaced", "closely-spaced"), ("set far apart", "far-apart"), ("clean shaven", "clean-shaven"),
         ("jet black", "jet-black"), ("dark skinned", "dark-skinned"), ("pale skinned", "pale-skinned"),
         ("fair skinned", "fair-skinned"), ("middle aged", "middle-aged")]
_PHRASES = ("facial hair", "skin tone", "nose bridge", "shaved head", "buzz cut", "crew cut",
            "shoulder length", "lots of", "a bit", "a little")
_BOUNDARY = {",", ".", ";", "!", "?", "with", "but", "and", "while", "plus"}


@dataclass
class Reading:
    """How a prompt was read. targets: attribute -> z-score (+ high / - low); style: hair style
    or None; expression: a preset name or None; used: (phrase, what it set); ungrounded:
    (word, why); notices: sentences for the user (truncation ...)."""
    prompt: str
    targets: dict[str, float] = field(default_factory=dict)
    relative: dict[str, float] = field(default_factory=dict)   # comparatives ("longer"): edits
    style: str | None = None
    expression: str | None = None
    used: list[tuple[str, str]] = field(default_factory=list)
    ungrounded: list[tuple[str, str]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.targets and self.style is None and not self.relative

    def summary(self) -> str:
        parts = [f"{p} -> {w}" for p, w in self.used] or ["nothing (a sample of the prior)"]
        text = "read: " + "; ".join(parts)
        if self.ungrounded:
            text += ". not used: " + ", ".join(f"'{w}' ({why})" for w, why in self.ungrounded)
        for n in self.notices:
            text += ". " + n
        return text

    def to_dict(self) -> dict:
        return {"prompt": self.prompt[:200], "targets": {k: round(v, 2) for k, v in self.targets.items()},
                "relative": {k: round(v, 2) for k, v in self.relative.items()}, "style": self.style,
                "expression": self.expression, "used": [list(u) for u in self.used],
                "ungrounded": [list(u) for u in self.ungrounded], "notices": list(self.notices)}


def tokenize(text: str) -> list[str]:
    t = " " + text.lower().replace("’", "'") + " "
    t = re.sub(r"([,.;!?])", r" \1 ", t)
    t = re.sub(r"\s+", " ", t)
    for a, b in _JOIN:
        t = t.replace(f" {a} ", f" {b} ")
    words = [w.strip("'\"()[]{}:") for w in t.split()]
    words = [w for w in words if w]
    out: list[str] = []
    i = 0
    while i < len(words):  # multi-word phrases become one token
        two = " ".join(words[i:i + 2])
        if two in _PHRASES or two in STYLE_WORDS:
            out.append(two)
            i += 2
        else:
            out.append(words[i])
            i += 1
    return out


_NOUNS = {n for nouns, _, _ in SCALAR_WORDS.values() for n in nouns}


def _lookup(noun: str, adj: str) -> dict[str, float]:
    """attribute -> signed level an adjective sets on a noun."""
    if noun == "hair" and adj in HAIR_COLOURS:
        return dict(HAIR_COLOURS[adj])
    if noun in ("eyes", "eye") and adj in EYE_COLOURS:
        return dict(EYE_COLOURS[adj])
    out = {}
    for attr, (nouns, hi, lo) in SCALAR_WORDS.items():
        if noun in nouns:
            if adj in hi:
                out[attr] = PLAIN_LEVEL
            elif adj in lo:
                out[attr] = -PLAIN_LEVEL
    return out


def read_prompt(prompt: str, max_chars: int = MAX_PROMPT_CHARS) -> Reading:
    """Parse a prompt (any text; never raises on content)."""
    text = str(prompt)
    r = Reading(text)
    if len(text) > max_chars:
        r.notices.append(f"the prompt was {len(text)} characters; only the first {max_chars} were read")
        text = text[:max_chars]
    toks = tokenize(text)
    consumed = [False] * len(toks)

    def set_target(attr: str, value: float, phrase: str, relative: bool) -> None:
        (r.relative if relative else r.targets)[attr] = value
        r.used.append((phrase, f"{attr} {'+' if value > 0 else '-' if value < 0 else '='}{abs(value):.1f}"
                       + (" (change)" if relative else "")))

    noun_pos = [i for i, w in enumerate(toks) if w in _NOUNS]
    for k, i in enumerate(noun_pos):
        noun = toks[i]
        start = noun_pos[k - 1] + 1 if k else 0
        window = list(range(start, i))
        for j in range(i - 1, start - 1, -1):  # modifiers stop at a clause boundary
            if toks[j] in _BOUNDARY and not (toks[j] == "and" and j > start and j + 1 < i):
                window = list(range(j + 1, i))
                break
        post = []
        if i + 1 < len(toks) and (toks[i + 1] in COMPARATIVES and COMPARATIVES[toks[i + 1]]
                                  or toks[i + 1] in DEGREES):   # "make the nose longer"
            post.append(i + 1)
            if toks[i + 1] in DEGREES and i + 2 < len(toks):
                post.append(i + 2)
        elif i + 1 < len(toks) and toks[i + 1] in ("is", "are", "that", "which", "set"):
            j = i + 1
            while j + 1 < len(toks) and toks[j + 1] not in _BOUNDARY and toks[j + 1] not in _NOUNS:
                j += 1
                post.append(j)
        negated = any(toks[j] in NEGATIONS for j in window + post)
        hits = 0
        degree, rel_more = None, None
        for j in window + post:
            w = toks[j]
            if w in DEGREES:
                degree = DEGREES[w]
                continue
            if w in ("more", "less"):
                rel_more = 1 if w == "more" else -1
                continue
            relative = w in COMPARATIVES and bool(COMPARATIVES[w])
            base = COMPARATIVES.get(w, w) if relative else w
            if base in AVERAGE_WORDS:
                for attr in _average_attrs(noun):
                    set_target(attr, 0.0, f"{w} {noun}", False)
                consumed[j] = consumed[i] = True
                hits += 1
                continue
            found = _lookup(noun, base)
            if not found:
                continue
            relative = relative or rel_more is not None
            sign = (-1 if negated else 1) * (rel_more if rel_more is not None else 1)
            for attr, level in found.items():
                lvl = level if degree is None else level / PLAIN_LEVEL * degree if abs(level) > 0 else 0.0
                set_target(attr, sign * lvl, " ".join(toks[min(window + post, default=j):j + 1] + ([noun] if j < i else [])), relative)
            consumed[j] = consumed[i] = True
            for d in window:
                if toks[d] in DEGREES or toks[d] in NEGATIONS or toks[d] in ("more", "less"):
                    consumed[d] = True
            degree, rel_more = None, None
            hits += 1
        if not hits and i > 0 and toks[i - 1] == "a little" and _lookup(noun, "little"):
            # "a little ear": "little" is the adjective here, not the degree "a little"
            for attr, level in _lookup(noun, "little").items():
                set_target(attr, level, f"a little {noun}", False)
            consumed[i] = consumed[i - 1] = True
            hits += 1
        if not hits and noun in PRESENCE:  # "a beard", "no freckles"
            attr, lvl = PRESENCE[noun]
            set_target(attr, -1.0 if negated else lvl, ("no " if negated else "") + noun, False)
            consumed[i] = True
            for d in window:
                if toks[d] in NEGATIONS or toks[d] in DEGREES:
                    consumed[d] = True

    for i, w in enumerate(toks):
        if consumed[i]:
            continue
        if w in STYLE_WORDS:
            r.style = STYLE_WORDS[w]
            r.used.append((w, f"hair style {r.style}"))
            consumed[i] = True
            if r.style == "long" and "hair_length" not in r.targets:
                r.targets["hair_length"] = PLAIN_LEVEL
        elif w in STANDALONE:
            deg = DEGREES.get(toks[i - 1]) if i > 0 and not consumed[i - 1] else None  # "slightly freckled"
            for attr, sign, lvl in STANDALONE[w]:
                set_target(attr, sign * (lvl if deg is None else lvl / PLAIN_LEVEL * deg),
                           w if deg is None else f"{toks[i - 1]} {w}", False)
            consumed[i] = True
            if deg is not None:
                consumed[i - 1] = True
        elif w in EXPRESSION_WORDS:
            r.expression = EXPRESSION_WORDS[w]
            r.used.append((w, f"expression {r.expression}"))
            consumed[i] = True
    if "hair" in toks and r.style is None:  # "long hair" / "short hair" choose a style too
        hl = r.targets.get("hair_length")
        if hl is not None:
            r.style = "long" if hl >= 1.0 else "medium" if hl > 0.3 else "short" if hl > -1.5 else "buzz"
    for i, w in enumerate(toks):
        if consumed[i] or w in _BOUNDARY or re.fullmatch(r"[\W\d_]+", w):
            continue
        topic = next((t for t, ws in UNGROUNDED_TOPICS.items() if w in ws), None)
        if topic:
            r.ungrounded.append((w, f"{topic} is not modelled"))
        elif w in STOPWORDS or w in _NOUNS or w in DEGREES or w in NEGATIONS:
            continue
        else:
            r.ungrounded.append((w, "not understood"))
    return r


def _average_attrs(noun: str) -> list[str]:
    return [a for a, (nouns, _, _) in SCALAR_WORDS.items() if noun in nouns
            and a not in HAIR_ATTRS + EYE_ATTRS + ("lip_colour", "brow_darkness", "cheek_colour")][:2]
