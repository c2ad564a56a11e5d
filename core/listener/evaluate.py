"""eval-listen: the listener model on held-out speakers against held-out real listening motion,
beside four baselines computed in the same run: a random real listening clip, mirroring the
speaker, the static mean face, and the behaviour model alone; and, for reference, a random real
clip from the training part of the same man's listening (what imitating the training listening
perfectly would score) and the model without its training-fitted expression calibration.

Realism (FD expression/pose, FD of frame differences), diversity (SID, variance), blink rate,
nods per minute and backchannel timing (share of nods 0.3-1.5 s after a cue found in the
speaker's audio), and jerk at segment joins vs inside segments. Several seeds per speaker.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from .behaviour import (
    STYLES,
    add_blinks,
    backchannel_cues,
    behaviour_listener,
    blend_style,
    clip_motion,
)
from .data import TEST_SPEAKERS, listening_runs, load_speaker, speaker_condition
from .metrics import Clusters, jerk_at_joins, motion_metrics

SYSTEMS = ("model", "model_no_blinks", "model_uncalibrated", "model_filtered", "random_real", "random_train_real",
           "mirror", "mean_face", "behaviour")


def evaluate(listener, media_dir: Path, tracked_dir: Path, seeds: int = 3, steps: int = 8,
             log: Callable[[str], None] = print) -> dict:
    rng = np.random.default_rng(0)
    real_runs = listening_runs(tracked_dir, "test")
    real = np.concatenate(real_runs)
    train_runs = listening_runs(tracked_dir, "train")
    train_frames = np.concatenate(train_runs)
    rng_train = np.random.default_rng(1)     # its own draws: random_real's stay as they were
    mean_face = train_frames.mean(0)
    clusters = Clusters(real)
    att = np.array([1, 0, 0, 0], np.float32)       # attentive: the listening the real clip shows
    rows: dict[str, list[dict]] = {s: [] for s in SYSTEMS}
    joins_near, joins_far = [], []
    gen_s = gen_frames = 0.0
    for name in TEST_SPEAKERS:
        path = media_dir / name
        if not path.exists():
            log(f"  {name}: missing, skipped")
            continue
        sp = load_speaker(path, tracked_dir)
        n = sp.frames
        cues = backchannel_cues(sp.feat)
        cond = speaker_condition(sp, listener.mean, listener.std, use_video=True)
        for seed in range(seeds):
            t0 = time.perf_counter()
            motion, info = listener.generate(cond, att, seed=seed, steps=steps)
            gen_s += time.perf_counter() - t0
            gen_frames += n
            rows["model"].append(motion_metrics(motion, real, clusters, cues))
            # the network alone, without the blink layer (Listener.generate(blinks=False))
            rows["model_no_blinks"].append(motion_metrics(info["raw"], real, clusters, cues))
            # without the expression calibration fitted on training clips (core.listener.calibrate)
            unc = clip_motion(info["uncalibrated"] * listener.std + listener.mean)
            unc = add_blinks(unc, blend_style(att).blink_per_min, np.random.default_rng([seed, 7]))
            rows["model_uncalibrated"].append(motion_metrics(unc, real, clusters, cues))
            filtered, _ = listener.generate(cond, att, seed=seed, steps=steps, postfilter=True)
            rows["model_filtered"].append(motion_metrics(filtered, real, clusters, cues))   # the option
            near, far = jerk_at_joins(info["normalised"], info["joins"])
            if np.isfinite(near):
                joins_near.append(near)
                joins_far.append(far)
            rows["random_real"].append(motion_metrics(_random_real(real_runs, n, rng), real, clusters, cues))
            # the same man's real listening from the training part: what imitating the training
            # listening perfectly would score against the held-out part
            rows["random_train_real"].append(motion_metrics(_random_real(train_runs, n, rng_train), real,
                                                            clusters, cues))
            beh, _ = behaviour_listener(sp.feat, sp.motion, STYLES["attentive"], np.random.default_rng(seed))
            rows["behaviour"].append(motion_metrics(beh, real, clusters, cues))
        if sp.motion is not None:
            rows["mirror"].append(motion_metrics(sp.motion, real, clusters, cues))
        rows["mean_face"].append(motion_metrics(np.repeat(mean_face[None], n, 0), real, clusters, cues))
        log(f"  {name}: {n} frames, {len(cues)} cues, video: {'yes' if sp.motion is not None else 'no'}")
    table = {s: _mean(r) for s, r in rows.items() if r}
    result = {"systems": table, "speakers": [s for s in TEST_SPEAKERS if (media_dir / s).exists()],
              "real_listening_s": len(real) / 25.0, "seeds": seeds, "steps": steps,
              "realtime_factor": (gen_frames / 25.0) / max(gen_s, 1e-9),
              "jerk_at_joins": float(np.mean(joins_near)) if joins_near else None,
              "jerk_within_segments": float(np.mean(joins_far)) if joins_far else None}
    m = table["model"]
    checks = {
        "fd_below_mirror": all(m[k] < table["mirror"][k] for k in ("fd_exp", "fd_pose")) if "mirror" in table else None,
        "fd_below_mean_face": all(m[k] < table["mean_face"][k] for k in ("fd_exp", "fd_pose")),
        "fd_below_behaviour": all(m[k] < table["behaviour"][k] for k in ("fd_exp", "fd_pose")),
        "fd_within_1.5x_random_real": all(m[k] <= 1.5 * table["random_real"][k] for k in ("fd_exp", "fd_pose")),
        "timing_beats_random_real": bool(m["backchannel_timing"] > table["random_real"]["backchannel_timing"]),
        "blinks_15_30_per_min": bool(15 <= m["blinks_per_min"] <= 30),
        "joins_no_jerkier": (result["jerk_at_joins"] <= result["jerk_within_segments"])
        if joins_near else None,
    }
    result["checks"] = checks
    return result


def _random_real(runs: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """A random real listening clip of n frames (runs joined end to end from a random start)."""
    out = []
    i = int(rng.integers(len(runs)))
    start = int(rng.integers(len(runs[i])))
    while sum(len(o) for o in out) < n:
        out.append(runs[i][start:])
        i, start = (i + 1) % len(runs), 0
    return np.concatenate(out)[:n]


def _mean(rows: list[dict]) -> dict:
    keys = rows[0].keys()
    return {k: float(np.nanmean([r[k] for r in rows])) if any(np.isfinite(r[k]) for r in rows) else float("nan")
            for k in keys}


def format_table(result: dict) -> str:
    cols = ("fd_exp", "fd_pose", "fd_diff_exp", "fd_diff_pose", "sid_exp", "sid_pose", "var_exp", "var_pose",
            "blinks_per_min", "nods_per_min", "backchannel_timing")
    head = f"{'system':18s}" + "".join(f"{c:>14s}" for c in cols)
    lines = [head]
    for s, m in result["systems"].items():
        lines.append(f"{s:18s}" + "".join(f"{m.get(c, float('nan')):14.4g}" for c in cols))
    return "\n".join(lines)
