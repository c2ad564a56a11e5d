"""`python main.py eval-caption [--refs FILE] [--media DIR]`: caption each referenced clip and
score it after FEC-Bench (event F1 x LCS ratio of the ordered events); per split, last line JSON."""
from __future__ import annotations

import json
import time
from pathlib import Path

from . import UserError

NAME = "eval-caption"
HELP = "score video captions against hand-made reference events (F1 x LCS)"
DEFAULT_REFS = Path(__file__).resolve().parents[2] / "resources" / "captions" / "media_refs.json"


def add_arguments(p) -> None:
    p.add_argument("--refs", default=str(DEFAULT_REFS),
                   help="reference events (JSON: clips -> split + events; default: the shipped "
                        "annotations of ../shared/media)")
    p.add_argument("--media", default=None, help="folder of the clips (default ../shared/media)")
    p.add_argument("--split", default=None, help="only clips of this split (dev or test)")


def run(args) -> int:
    import numpy as np

    from ..caption import NoFaceError, caption_video
    from ..caption.evaluate import RefsError, score_clip, read_refs
    from ..paths import MissingDataError, shared_path

    try:
        refs = read_refs(args.refs)
    except RefsError as exc:
        raise UserError(str(exc)) from None
    try:
        media = shared_path("media", args.media, "the media folder (pass --media DIR)")
    except MissingDataError as exc:
        raise UserError(str(exc)) from None
    if not media.is_dir():
        raise UserError(f"{media} is not a folder of clips")
    scores, timing = [], []
    for name, ref in refs.items():
        if args.split and ref["split"] != args.split:
            continue
        video = next((p for p in sorted(media.glob(f"{name}.*")) if p.suffix.lower() in (".mp4", ".avi", ".mov", ".mkv", ".webm")), None)
        if video is None:
            print(f"{name}: no video in {media}, skipped")
            continue
        t0 = time.perf_counter()
        try:
            cap = caption_video(video)
            pred = [e.to_json() for e in cap.events]
        except NoFaceError as exc:
            print(f"{name}: {exc}")
            pred, cap = [], None
        s = score_clip(name, pred, ref["events"], ref["split"])
        scores.append(s)
        if cap is not None:
            timing.append((cap.seconds, time.perf_counter() - t0))
        print(f"{name:14s} [{s.split or '-':4s}] P {s.precision:.2f} R {s.recall:.2f} F1 {s.f1:.2f} "
              f"LCS {s.lcs:.2f} -> {s.score:.3f} ({s.predicted} events, {s.reference} in the reference)")
    if not scores:
        raise UserError("no referenced clip could be scored")
    out = {"clips": len(scores)}
    for split in sorted({s.split for s in scores}):
        ss = [s for s in scores if s.split == split]
        key = split or "all"
        out[key] = {k: round(float(np.mean([getattr(s, k) for s in ss])), 3) for k in ("f1", "lcs", "score", "precision", "recall")}
        out[key]["clips"] = len(ss)
        print(f"{key}: {len(ss)} clips, F1 {out[key]['f1']:.3f}, LCS {out[key]['lcs']:.3f}, "
              f"score (F1 x LCS) {out[key]['score']:.3f}")
    if timing:
        media_s, wall = map(sum, zip(*timing))
        out["seconds_per_30s_of_video"] = round(30.0 * wall / max(media_s, 1e-9), 2)
        print(f"captioning took {wall:.1f} s for {media_s:.1f} s of video "
              f"({out['seconds_per_30s_of_video']:.1f} s per 30 s; target <= 15)")
    print(json.dumps(out))
    return 0
