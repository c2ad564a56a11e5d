"""Expression events of one face over time, from a clip (53 ARKit-named weights, head rotation,
gaze per frame): what `main.py caption` describes and `eval-caption` scores (after FEC-Bench).

Each event type reads one signal made of blendshapes or pose. An event starts where its signal
rises a margin above the clip's own resting level (a low percentile: a smiling clip does not
make smiling the baseline) and ends where it falls back below a lower threshold (hysteresis, so
a wobble at the threshold is one event, not several); short gaps are bridged and very short
events dropped. Head nods and shakes are oscillations of pitch and yaw; blinks are counted.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from core.expressions import EXPRESSION_NAMES

IDX = {n: i for i, n in enumerate(EXPRESSION_NAMES)}


@dataclass
class Event:
    type: str                 # EVENT_TYPES, eyes/gaze/head types below, "blink", "talking"
    start: float              # seconds
    end: float
    peak: float               # time of the strongest frame
    intensity: float          # peak height above the resting level (signal units)
    detail: str = ""          # a direction ("their left", "down") where the type has one
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        for k in ("start", "end", "peak"):
            d[k] = round(d[k], 2)
        d["intensity"] = round(d["intensity"], 3)
        if not d["extra"]:
            d.pop("extra")
        return d


def _mean(w: np.ndarray, *names: str) -> np.ndarray:
    return w[:, [IDX[n] for n in names]].mean(1)


def signals(weights: np.ndarray, rotation: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame signals, each in [0, 1] (blendshapes) or degrees (pose)."""
    w = np.asarray(weights, np.float32)
    look_left = _mean(w, "eyeLookOut_L", "eyeLookIn_R")
    look_right = _mean(w, "eyeLookIn_L", "eyeLookOut_R")
    return {
        "smile": _mean(w, "mouthSmile_L", "mouthSmile_R"),
        "lip_depress": _mean(w, "mouthFrown_L", "mouthFrown_R"),
        "frown": _mean(w, "browDown_L", "browDown_R"),
        "brow_raise": np.maximum(_mean(w, "browInnerUp_L", "browInnerUp_R"),
                                 _mean(w, "browOuterUp_L", "browOuterUp_R")),
        "jaw_drop": w[:, IDX["jawOpen"]],
        "pucker": np.maximum(w[:, IDX["mouthPucker"]], w[:, IDX["mouthFunnel"]]),
        "cheek_puff": _mean(w, "cheekPuff_L", "cheekPuff_R"),
        "mouth_side": np.abs(w[:, IDX["mouthLeft"]] - w[:, IDX["mouthRight"]]),
        "nose_wrinkle": _mean(w, "noseSneer_L", "noseSneer_R"),
        "blink_l": w[:, IDX["eyeBlink_L"]], "blink_r": w[:, IDX["eyeBlink_R"]],
        "gaze_x": look_left - look_right,                       # + toward the subject's left
        "gaze_down": _mean(w, "eyeLookDown_L", "eyeLookDown_R") - _mean(w, "eyeLookUp_L", "eyeLookUp_R"),
        "mouth_left": w[:, IDX["mouthLeft"]] - w[:, IDX["mouthRight"]],
        "yaw": rotation[:, 0], "pitch": rotation[:, 1], "roll": rotation[:, 2],
    }


# type -> (signal, rise above rest to start, minimum seconds); an event ends below 60% of the rise
EVENT_TYPES: dict[str, tuple[str, float, float]] = {
    "smile": ("smile", 0.30, 0.25),
    "lip_depress": ("lip_depress", 0.22, 0.25),
    "frown": ("frown", 0.30, 0.30),
    "brow_raise": ("brow_raise", 0.30, 0.30),
    "jaw_drop": ("jaw_drop", 0.40, 0.40),
    "pucker": ("pucker", 0.50, 0.30),
    "cheek_puff": ("cheek_puff", 0.25, 0.30),
    "mouth_side": ("mouth_side", 0.30, 0.25),
    "nose_wrinkle": ("nose_wrinkle", 0.35, 0.20),
}
EYES_CLOSED_S = 0.4        # a closure longer than this is "eyes closed", shorter a blink
GAZE_AWAY = 0.4            # eyeLook* balance away from the clip's usual (about 12 degrees)
GAZE_MIN_S = 0.6
TURN_DEG, TILT_DEG, TURN_MIN_S = 15.0, 10.0, 0.4
NOD_DEG, SHAKE_DEG = 4.0, 6.0   # half swing of one oscillation


def smooth(x: np.ndarray, fps: float, sigma_s: float = 0.06) -> np.ndarray:
    s = sigma_s * fps
    if s < 0.5 or len(x) < 3:
        return np.asarray(x, np.float32)
    r = int(3 * s) + 1
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / s) ** 2)
    k /= k.sum()
    return np.convolve(np.pad(x, r, mode="edge"), k, mode="valid").astype(np.float32)


def spans(active: np.ndarray, fps: float, min_s: float, bridge_s: float = 0.25) -> list[tuple[int, int]]:
    """[start, end) frame ranges where `active`, gaps under bridge_s joined, runs under min_s dropped."""
    runs, start = [], None
    for i, a in enumerate(np.append(active, False)):
        if a and start is None:
            start = i
        elif not a and start is not None:
            runs.append([start, i])
            start = None
    merged: list[list[int]] = []
    for r in runs:
        if merged and (r[0] - merged[-1][1]) / fps < bridge_s:
            merged[-1][1] = r[1]
        else:
            merged.append(r)
    return [(a, b) for a, b in merged if (b - a) / fps >= min_s]


def hysteresis(x: np.ndarray, on: float, off: float) -> np.ndarray:
    """True from where x exceeds `on` until it drops below `off`."""
    out = np.zeros(len(x), bool)
    state = False
    for i, v in enumerate(x):
        state = v > on if not state else v > off
        out[i] = state
    return out


def rest_level(x: np.ndarray) -> float:
    return float(np.percentile(x, 15)) if len(x) else 0.0


def _events_of(kind: str, x: np.ndarray, fps: float, rise: float, min_s: float,
               rest: float | None = None, detail=None) -> list[Event]:
    rest = rest_level(x) if rest is None else rest
    active = hysteresis(x, rest + rise, rest + 0.6 * rise)
    out = []
    for a, b in spans(active, fps, min_s):
        p = a + int(np.argmax(x[a:b]))
        d = detail(a, b) if detail else ""
        out.append(Event(kind, a / fps, b / fps, p / fps, float(x[p] - rest), d))
    return out


def oscillations(angle: np.ndarray, fps: float, swing: float, kind: str) -> list[Event]:
    """Nods (pitch) or shakes (yaw): at least two alternating turns of `swing` degrees (a half
    swing each way) within 0.12-0.9 s of each other, after taking out the slow drift."""
    if len(angle) < 5:
        return []
    drift = smooth(angle, fps, 0.5)
    x = smooth(angle, fps, 0.04) - drift
    # turning points: local extremes beyond the swing
    ext = [i for i in range(1, len(x) - 1)
           if abs(x[i]) >= swing and ((x[i] >= x[i - 1] and x[i] >= x[i + 1]) or (x[i] <= x[i - 1] and x[i] <= x[i + 1]))]
    # keep one extreme per lobe (the largest of neighbours with the same sign)
    lobes: list[int] = []
    for i in ext:
        if lobes and np.sign(x[i]) == np.sign(x[lobes[-1]]) and (i - lobes[-1]) / fps < 0.5:
            if abs(x[i]) > abs(x[lobes[-1]]):
                lobes[-1] = i
        else:
            lobes.append(i)
    out, group = [], []
    for i in lobes:
        if group and (np.sign(x[i]) == np.sign(x[group[-1]]) or not 0.12 <= (i - group[-1]) / fps <= 0.9):
            if len(group) >= 2:
                out.append(group)
            group = []
        group.append(i)
    if len(group) >= 2:
        out.append(group)
    events = []
    for g in out:
        a, b = max(0, g[0] - int(0.15 * fps)), min(len(x), g[-1] + int(0.15 * fps))
        amp = float(max(abs(x[i]) for i in g))
        events.append(Event(kind, a / fps, b / fps, g[int(np.argmax([abs(x[i]) for i in g]))] / fps,
                            amp, extra={"cycles": len(g) // 2 or 1}))
    return events


def blinks_and_closures(left: np.ndarray, right: np.ndarray, fps: float) -> list[Event]:
    """Both eyes shut: a blink (short) or eyes closed (long); one eye shut: a wink."""
    rest = min(rest_level(left), rest_level(right))
    both = hysteresis(np.minimum(left, right), rest + 0.6, rest + 0.45)   # looking down reads ~0.6-0.7
    out = []
    for a, b in spans(both, fps, 0.0, bridge_s=0.05):
        kind = "eyes_closed" if (b - a) / fps >= EYES_CLOSED_S else "blink"
        out.append(Event(kind, a / fps, b / fps, (a + b) / 2 / fps, float(np.minimum(left, right)[a:b].max() - rest)))
    diff = left - right
    for sign, side in ((1, "left"), (-1, "right")):
        one = hysteresis(sign * diff, 0.4, 0.25) & ~both
        for a, b in spans(one, fps, 0.15, bridge_s=0.1):
            p = a + int(np.argmax(sign * diff[a:b]))
            out.append(Event("wink", a / fps, b / fps, p / fps, float(sign * diff[p]), f"their {side} eye"))
    return out


SPEECH_LIKE = ("pucker", "jaw_drop", "mouth_side", "lip_depress")
UNSCORED = ("blink", "talking")     # summarised in the text, never in hand-made references


def talking(jaw: np.ndarray, fps: float, window_s: float = 1.0, min_std: float = 0.07) -> np.ndarray:
    """Frames inside a stretch where the jaw opens and closes like speech (its spread over a
    one-second window), not held open."""
    n = max(3, int(window_s * fps))
    pad = np.pad(jaw, (n // 2, n - n // 2 - 1), mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(pad, n)
    return win.std(1) > min_std


def detect_events(weights: np.ndarray, rotation: np.ndarray, fps: float,
                  valid: np.ndarray | None = None) -> list[Event]:
    """Every event of the clip, sorted by start. `valid`: frames where the face was seen (others
    never start or carry an event)."""
    raw = signals(weights, rotation)
    s = {k: smooth(v, fps) for k, v in raw.items()}
    ok = np.ones(len(weights), bool) if valid is None else np.asarray(valid, bool)
    for k in s:
        if k not in ("yaw", "pitch", "roll"):
            s[k] = np.where(ok, s[k], 0.0)
    ev: list[Event] = []
    for kind, (sig, rise, min_s) in EVENT_TYPES.items():
        detail = None
        if kind == "mouth_side":
            detail = (lambda a, b: "to their left" if s["mouth_left"][a:b].mean() > 0 else "to their right")
        ev += _events_of(kind, s[sig], fps, rise, min_s, detail=detail)
    # speech moves the jaw and lips several times a second: short mouth events inside it are
    # speech, not expressions (told once, as talking)
    talk = talking(raw["jaw_drop"], fps) & ok      # unsmoothed: syllables come 3-6 times a second
    talk_spans = spans(talk, fps, 1.0, bridge_s=0.5)
    for a, b in talk_spans:
        ev.append(Event("talking", a / fps, b / fps, (a + b) / 2 / fps, 0.0))
    ev = [e for e in ev if not (e.type in SPEECH_LIKE and e.end - e.start < 1.0
                                and talk[int(e.start * fps):max(int(e.end * fps), int(e.start * fps) + 1)].mean() >= 0.5)]
    ev += blinks_and_closures(s["blink_l"], s["blink_r"], fps)
    # gaze away: sideways or down (eyes, not the head), beyond a fixed balance from straight
    gx = s["gaze_x"] - (float(np.median(s["gaze_x"][ok])) if ok.any() else 0.0)
    gd = s["gaze_down"] - (float(np.median(s["gaze_down"][ok])) if ok.any() else 0.0)
    closed = np.minimum(s["blink_l"], s["blink_r"]) > 0.5
    away = (np.abs(gx) > GAZE_AWAY) | (gd > GAZE_AWAY)
    for a, b in spans(away & ~closed, fps, GAZE_MIN_S):
        seg_x, seg_d = gx[a:b].mean(), gd[a:b].mean()
        detail = "down" if seg_d > abs(seg_x) else ("to their left" if seg_x > 0 else "to their right")
        p = a + int(np.argmax(np.maximum(np.abs(gx[a:b]), gd[a:b])))
        ev.append(Event("gaze_away", a / fps, b / fps, p / fps, float(max(abs(seg_x), seg_d)), detail))
    # head: turns and tilts held away from the clip's usual pose, nods and shakes
    for kind, sig, deg in (("head_turn", "yaw", TURN_DEG), ("head_tilt", "roll", TILT_DEG)):
        x = s[sig] - float(np.median(s[sig][ok])) if ok.any() else s[sig]
        for sign, side in ((1, "their left"), (-1, "their right")):
            ev += _events_of(kind, sign * x, fps, deg, TURN_MIN_S, rest=0.0,
                             detail=lambda a, b, side=side: side)
    ev += oscillations(s["pitch"], fps, NOD_DEG, "head_nod")
    ev += oscillations(s["yaw"], fps, SHAKE_DEG, "head_shake")
    ev.sort(key=lambda e: (e.start, e.type))
    return ev


def blink_rate(events: list[Event], seconds: float) -> float:
    """Blinks per minute."""
    n = sum(e.type == "blink" for e in events)
    return 60.0 * n / seconds if seconds > 0 else 0.0
