#!/usr/bin/env python3
"""Listener benchmark: motion generation speed (x real time) against the behaviour model in the
same run, listener MP4 export at 512x512 (frames/s end to end: pose, draw and encode overlapped,
beside the frames drawn one by one and the draw alone in the same run), live listening (audio
chunk in -> listener frame out, ms; steady frames/s) and join smoothness. Prints figures and a final JSON line.

    python bench/listen.py [--audio ../shared/media/speech_c.wav] [--seconds 60] [--render-frames 100]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from core.paths import SHARED_DIR

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--audio", default=str(SHARED_DIR / "media" / "speech_c.wav"))
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--render-frames", type=int, default=100)
    ap.add_argument("--live-frames", type=int, default=200)
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()

    import torch
    torch.set_num_threads(1)
    from core.animation.audio import read_audio
    from core.listener.behaviour import STYLES, behaviour_listener
    from core.listener.data import make_speaker, motion_to_clip, speaker_condition
    from core.listener.features import HOP, audio_features
    from core.listener.generate import Listener, LiveListener
    from core.listener.metrics import jerk_at_joins

    out: dict = {}
    audio = read_audio(args.audio).samples[: int(args.seconds * 16000)]
    dur = len(audio) / 16000
    listener = Listener.load()
    att = np.array([1, 0, 0, 0], np.float32)

    t0 = time.perf_counter()
    sp = make_speaker("bench", audio)
    feat_s = time.perf_counter() - t0
    cond = speaker_condition(sp, listener.mean, listener.std, use_video=False)
    t0 = time.perf_counter()
    motion, info = listener.generate(cond, att, seed=0, steps=args.steps)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    behaviour_listener(sp.feat, None, STYLES["attentive"], np.random.default_rng(0))
    beh_s = time.perf_counter() - t0
    near, far = jerk_at_joins(info["normalised"], info["joins"])
    out["generation"] = {"seconds_of_audio": dur, "features_s": feat_s, "model_s": gen_s,
                         "model_x_realtime": dur / gen_s, "with_features_x_realtime": dur / (gen_s + feat_s),
                         "behaviour_model_s": beh_s, "model_vs_behaviour_time": gen_s / max(beh_s, 1e-9),
                         "segments": info["segments"], "steps": args.steps,
                         "jerk_at_joins": near, "jerk_within_segments": far, "join_jerk_ratio": near / far}
    print(f"generation: {dur:.0f} s of audio -> motion in {gen_s:.2f} s ({dur / gen_s:.1f}x real time; "
          f"features {feat_s:.2f} s; behaviour model {beh_s:.3f} s); jerk at joins {near:.3f} vs within {far:.3f}")

    # the listener clip at 512x512: the whole MP4 export (pose, draw, encode: what `listen`
    # does), then the same frames drawn one after another with nothing overlapped
    import os
    import resource
    import tempfile

    from core.animation.export import ClipRenderer, export_clip_mp4
    clip = motion_to_clip(motion[: args.render_frames])
    ev = clip.evaluated()
    r = ClipRenderer(None, size=512)        # as main.py listen renders (FXAA)
    r.render(ev[0])
    with tempfile.TemporaryDirectory() as tmp:
        kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        c0, t0 = time.process_time(), time.perf_counter()
        export_clip_mp4(clip, Path(tmp) / "bench.mp4", renderer=r)
        mp4_s, mp4_cpu = time.perf_counter() - t0, time.process_time() - c0
        kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ffmpeg_cpu = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    mp4 = len(ev) / mp4_s
    t0 = time.perf_counter()
    for row in ev:
        r.render(row)
    full = len(ev) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(len(ev)):       # the same frame without posing: what drawing alone costs
        r.r.render_image(512, 512, r.camera, mode="mesh", view="textured")
    draw = len(ev) / (time.perf_counter() - t0)
    r.release()
    out["render"] = {"size": 512, "frames": len(ev), "mp4_fps": mp4, "target_fps": 25, "vs_target": mp4 / 25,
                     "mp4_cpu_ms_per_frame": 1000 * mp4_cpu / len(ev),
                     "ffmpeg_cpu_ms_per_frame": 1000 * ffmpeg_cpu / len(ev),
                     "serial_render_fps": full, "draw_only_fps": draw, "load": os.getloadavg()[0]}
    print(f"MP4 512x512: {mp4:.1f} frames/s end to end (CPU per frame {1000 * mp4_cpu / len(ev):.1f} ms here + "
          f"{1000 * ffmpeg_cpu / len(ev):.1f} ms ffmpeg); frames drawn one by one {full:.1f}/s (draw only "
          f"{draw:.1f}); target 25; load {os.getloadavg()[0]:.1f}")

    # live: one 40 ms chunk in -> one frame out
    live = LiveListener(listener, att)
    times = []
    t_start = time.perf_counter()
    for k in range(args.live_frames):
        chunk = audio[k * HOP:(k + 1) * HOP]
        t0 = time.perf_counter()
        live.push(chunk)
        times.append(time.perf_counter() - t0)
    wall = time.perf_counter() - t_start
    ms = np.array(times) * 1000
    out["live"] = {"median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)),
                   "max_ms": float(ms.max()), "steady_fps": args.live_frames / wall, "steps": live.steps,
                   "window": live.window}
    print(f"live: median {np.median(ms):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms per chunk; "
          f"{args.live_frames / wall:.1f} frames/s steady")
    _ = audio_features
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
