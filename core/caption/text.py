"""Events -> a paragraph in time order, with times ("At 0:10.0 ...").

Events that overlap and read as one expression are told together (brows raised with the mouth
dropping open reads as surprise; brows lowered with the mouth corners down as a frown), blinks
are summarised by their rate, and only blinks of note (a burst, a long closure) get a sentence.
"""
from __future__ import annotations

from .events import Event, blink_rate

PHRASES = {
    "smile": ("smiles", "a smile"),
    "lip_depress": ("pulls the corners of the mouth down", "the mouth corners pulled down"),
    "frown": ("lowers the brows", "lowered brows"),
    "brow_raise": ("raises the eyebrows", "raised eyebrows"),
    "jaw_drop": ("drops the jaw open", "an open mouth"),
    "pucker": ("purses the lips", "pursed lips"),
    "cheek_puff": ("puffs out the cheeks", "puffed cheeks"),
    "mouth_side": ("pulls the mouth to one side", "the mouth pulled aside"),
    "nose_wrinkle": ("wrinkles the nose", "a wrinkled nose"),
    "wink": ("winks", "a wink"),
    "eyes_closed": ("closes the eyes", "closed eyes"),
    "gaze_away": ("looks away", "an averted gaze"),
    "head_turn": ("turns the head", "a turned head"),
    "head_tilt": ("tilts the head", "a tilted head"),
    "head_nod": ("nods", "a nod"),
    "head_shake": ("shakes the head", "a head shake"),
}
# (types together, what they read as)
COMPOSITES = ((("brow_raise", "jaw_drop"), "looks surprised"),
              (("frown", "lip_depress"), "frowns"),
              (("smile", "cheek_puff"), "grins with puffed cheeks"))


def clock(t: float) -> str:
    m, s = divmod(max(t, 0.0), 60.0)
    return f"{int(m)}:{s:04.1f}"


def degree(e: Event) -> str:
    if e.type in ("head_nod", "head_shake", "head_turn", "head_tilt", "gaze_away", "wink", "eyes_closed", "blink"):
        return ""
    return "slightly " if e.intensity < 0.45 else ("" if e.intensity < 0.7 else "strongly ")


def _sentence(group: list[Event]) -> str:
    first = min(group, key=lambda e: e.start)
    types = {e.type for e in group}
    verb = None
    for need, reads in COMPOSITES:
        if set(need) <= types:
            verb = reads
            types -= set(need)
            break
    parts = [verb] if verb else []
    for e in sorted(group, key=lambda e: e.start):
        if e.type not in types:
            continue
        types.discard(e.type)
        p = degree(e) + PHRASES[e.type][0]
        if e.detail:
            p += f" {e.detail}" if e.type not in ("gaze_away", "head_turn", "head_tilt") else f" ({e.detail})"
        if e.type in ("head_nod", "head_shake") and e.extra.get("cycles", 1) > 1:
            p += f" {e.extra['cycles']} times"
        parts.append(p)
    what = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    peak = max(group, key=lambda e: e.intensity)
    end = max(e.end for e in group)
    tail = f", peaking at {clock(peak.peak)} and easing off by {clock(end)}" if end - first.start >= 1.0 else \
        f" (until {clock(end)})"
    return f"At {clock(first.start)} the person {what}{tail}."


def groups(events: list[Event], join_s: float = 0.3) -> list[list[Event]]:
    """Overlapping (or nearly touching) expression events, in time order."""
    out: list[list[Event]] = []
    for e in sorted(events, key=lambda e: e.start):
        if out and e.start <= max(x.end for x in out[-1]) - join_s:
            out[-1].append(e)
        else:
            out.append([e])
    return out


def paragraph(events: list[Event], seconds: float, seen_share: float = 1.0, cuts: int = 0) -> str:
    told = [e for e in events if e.type not in ("blink", "talking")]
    lines = []
    if cuts:
        lines.append(f"The video has {cuts + 1} shots; the same main character is followed through them.")
    if not told:
        lines.append(f"Over {seconds:.0f} s the person keeps a mostly neutral, steady expression.")
    lines += [_sentence(g) for g in groups(told)]
    talk = sum(e.end - e.start for e in events if e.type == "talking")
    if talk >= 1.0:
        lines.append(f"The person is talking for about {talk:.0f} s of the {seconds:.0f} s.")
    rate = blink_rate(events, seconds)
    blinks = [e for e in events if e.type == "blink"]
    if blinks:
        burst = _burst(blinks)
        note = f" including a quick burst of {burst[0]} blinks around {clock(burst[1])}" if burst else ""
        lines.append(f"The person blinks {len(blinks)} times ({rate:.0f} a minute){note}.")
    elif seconds >= 10:
        lines.append("The person hardly blinks.")
    if seen_share < 0.9:
        lines.append(f"The face is visible in {seen_share:.0%} of the video.")
    return " ".join(lines)


def _burst(blinks: list[Event]) -> tuple[int, float] | None:
    """Three or more blinks within two seconds: (count, time)."""
    starts = [b.start for b in blinks]
    for i in range(len(starts)):
        j = i
        while j + 1 < len(starts) and starts[j + 1] - starts[i] <= 2.0:
            j += 1
        if j - i + 1 >= 3:
            return j - i + 1, starts[i]
    return None
