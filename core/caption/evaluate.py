"""Caption scoring after FEC-Bench: event F1 (same type, overlapping in time) times the
longest-common-subsequence ratio of the time-ordered event types, against hand-made references."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

class RefsError(ValueError):
    """A reference file that cannot be used; the message says why."""


@dataclass
class ClipScore:
    name: str
    split: str
    precision: float
    recall: float
    f1: float
    lcs: float
    score: float
    predicted: int
    reference: int


def overlaps(a: dict, b: dict, min_iou: float = 0.0) -> bool:
    inter = min(a["end"], b["end"]) - max(a["start"], b["start"])
    union = max(a["end"], b["end"]) - min(a["start"], b["start"])
    return inter > 0 and inter / max(union, 1e-6) >= min_iou


def match(pred: list[dict], ref: list[dict]) -> int:
    """Greedy one-to-one matching of same-type overlapping events (largest overlap first)."""
    pairs = []
    for i, p in enumerate(pred):
        for j, r in enumerate(ref):
            if p["type"] == r["type"] and overlaps(p, r):
                pairs.append((min(p["end"], r["end"]) - max(p["start"], r["start"]), i, j))
    used_p, used_r, n = set(), set(), 0
    for _, i, j in sorted(pairs, reverse=True):
        if i not in used_p and j not in used_r:
            used_p.add(i)
            used_r.add(j)
            n += 1
    return n


def lcs(a: list[str], b: list[str]) -> int:
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            t[i + 1][j + 1] = t[i][j] + 1 if x == y else max(t[i][j + 1], t[i + 1][j])
    return t[-1][-1]


def score_clip(name: str, pred: list[dict], ref: list[dict], split: str = "") -> ClipScore:
    from .events import UNSCORED
    pred = [p for p in pred if p["type"] not in UNSCORED]
    m = match(pred, ref)
    prec = m / len(pred) if pred else (1.0 if not ref else 0.0)
    rec = m / len(ref) if ref else 1.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
    seq_p = [p["type"] for p in sorted(pred, key=lambda e: e["start"])]
    seq_r = [r["type"] for r in sorted(ref, key=lambda e: e["start"])]
    ratio = lcs(seq_p, seq_r) / max(len(seq_p), len(seq_r)) if (seq_p or seq_r) else 1.0
    return ClipScore(name, split, prec, rec, f1, ratio, f1 * ratio, len(pred), len(ref))


def read_refs(path: str | Path) -> dict[str, dict]:
    """{clip name: {"split": str, "events": [...]}} from a JSON reference file."""
    p = Path(path)
    if not p.is_file():
        raise RefsError(f"reference file {p} not found")
    if p.stat().st_size > 20 << 20:
        raise RefsError(f"{p.name} is larger than a reference file can be (20 MB)")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:    # bad JSON, a 5000-digit number, ...
        raise RefsError(f"{p.name} is not a JSON reference file: {str(exc)[:200]}") from None
    except RecursionError:      # arrays nested thousands deep (found by the fuzzer)
        raise RefsError(f"{p.name} is not a reference file: its JSON is nested too deeply") from None
    clips = data.get("clips") if isinstance(data, dict) else None
    if not isinstance(clips, dict) or not clips:
        raise RefsError(f"{p.name} has no \"clips\" object of reference events")
    out = {}
    for name, c in clips.items():
        if not isinstance(c, dict) or not isinstance(c.get("events"), list):
            raise RefsError(f"{p.name}: clip {name!r} has no list of events")
        evs = []
        for e in c["events"]:
            ok = isinstance(e, dict) and isinstance(e.get("type"), str) and all(
                isinstance(e.get(k), (int, float)) and not isinstance(e.get(k), bool) for k in ("start", "end"))
            if not ok or not 0 <= e["start"] <= e["end"] <= 36_000:
                raise RefsError(f"{p.name}: clip {name!r} has an event without a type and 0 <= start <= end: {e!r:.80}")
            evs.append({"type": e["type"], "start": float(e["start"]), "end": float(e["end"])})
        out[str(name)] = {"split": str(c.get("split", "")), "events": evs}
    return out
