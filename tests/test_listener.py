"""The listener (core/listener): audio features, the behaviour model, attitude sentences, the
DiT's causality, generation with the shipped weights (segments, joins, seeds, silence, cancel),
live listening, metrics, and the listen command."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.expressions import INDEX
from core.listener.features import FPS, HOP, RATE, audio_features

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"


def _voice(seconds: float, f0, amp=0.3, seed=0) -> np.ndarray:
    """A buzzy voiced sound with a pitch track f0(t) (Hz): harmonics, a little noise."""
    t = np.arange(int(seconds * RATE)) / RATE
    f = np.broadcast_to(np.asarray(f0(t) if callable(f0) else f0, float), t.shape)
    phase = 2 * np.pi * np.cumsum(f) / RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 8))
    return (amp * x / 2 + 0.003 * np.random.default_rng(seed).normal(size=len(t))).astype(np.float32)


def test_features_pitch_voicing_and_silence():
    f = audio_features(_voice(2.0, 180.0))
    assert f.frames == 50 and f.mel.shape == (50, 24) and f.matrix().shape == (50, 30)
    assert np.median(f.f0[f.voiced]) == pytest.approx(180, rel=0.04) and f.voiced.mean() > 0.8
    assert f.vad.mean() > 0.5 and not f.silent
    s = audio_features(np.zeros(RATE, np.float32))
    assert s.silent and not s.vad.any() and np.all(s.matrix()[:, :24] == 0)


def test_backchannel_cue_and_nod_follow_low_pitch():
    from core.listener.behaviour import STYLES, backchannel_cues, respond

    # 2 s of speech at 200 Hz, then 0.4 s dropping to 110 Hz (a low-pitch region), then 2 s more
    f0 = lambda t: np.where((t > 2.0) & (t < 2.4), 110.0, 200.0)   # noqa: E731
    feat = audio_features(_voice(4.4, f0))
    cues = backchannel_cues(feat)
    assert len(cues) >= 1 and abs(cues[0] / FPS - 2.0) < 0.2
    resp, ev = respond(feat, None, STYLES["attentive"].__class__(nod_prob=1.0), np.random.default_rng(0))
    assert len(ev["nods"]) >= 1
    delay = (ev["nods"][0] - cues[0]) / FPS
    assert 0.3 <= delay <= 1.2                                    # ~700 ms after the cue starts
    assert resp[ev["nods"][0]:ev["nods"][0] + 12, 54].max() > 3   # head pitch (chin down), degrees


def test_cue_channel_marks_the_cues_causally():
    """The model's cue channel finds the same cues eval-listen scores against, frame by frame
    (live: one row at a time; offline: the whole condition), and never looks ahead."""
    from core.listener.behaviour import backchannel_cues
    from core.listener.data import (
        CUE_RAMP,
        SPEAKER_DIM,
        CueRamp,
        cue_channel,
        make_speaker,
        speaker_condition,
        with_cue_channel,
    )

    f0 = lambda t: np.where(((t > 2.0) & (t < 2.4)) | ((t > 5.0) & (t < 5.4)), 110.0, 200.0)   # noqa: E731
    sp = make_speaker("s", _voice(7.0, f0))
    cond = speaker_condition(sp, np.zeros(56, np.float32), np.ones(56, np.float32), use_video=False)
    cues = backchannel_cues(sp.feat)
    ch = cue_channel(cond)
    found = np.flatnonzero(ch == 1.0)
    assert len(cues) >= 2 and len(found) == len(cues)
    assert np.all((found - cues >= 0) & (found - cues <= 5))           # found 110-200 ms after it starts
    assert ch[found[0] + CUE_RAMP // 2] == pytest.approx(0.5, abs=0.03) and ch[:found[0]].max() == 0
    ramp = CueRamp()
    assert np.array_equal(np.array([ramp.step(r) for r in cond], np.float32), ch)    # live == offline
    cut = cue_channel(cond[:found[1]])                                   # causal: no look-ahead
    assert np.array_equal(cut, ch[:found[1]])
    assert with_cue_channel(cond, SPEAKER_DIM).shape[1] == SPEAKER_DIM
    assert np.array_equal(with_cue_channel(cond, SPEAKER_DIM + 1)[:, -1], ch)


def test_fine_tune_start_keeps_the_old_model():
    """A model given the cue input starts from the shipped weights as the same function."""
    from core.listener.data import SPEAKER_DIM
    from core.listener.generate import default_model_path
    from core.listener.model import ListenerConfig, ListenerDiT
    from core.listener.train import init_from
    from core.safeload import torch_load

    blob = torch_load(default_model_path(), max_bytes=64 << 20)
    import json
    old_cfg = ListenerConfig(**json.loads(blob["config"]))
    old = ListenerDiT(old_cfg)
    init_from(old, default_model_path())
    new = ListenerDiT(ListenerConfig(**{**old_cfg.to_dict(), "speaker_dim": SPEAKER_DIM + 1}))
    init_from(new, default_model_path())
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, old_cfg.window, 56, generator=g)
    spk = torch.randn(2, old_cfg.past + old_cfg.window, SPEAKER_DIM + 1, generator=g)
    att = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    t = torch.tensor([100, 700])
    with torch.no_grad():
        a = new(x, t, {"speaker": spk, "attitude": att})
        b = old(x, t, {"speaker": spk[..., :old_cfg.speaker_dim] if old_cfg.speaker_dim == SPEAKER_DIM
                       else spk, "attitude": att})
    assert torch.allclose(a, b, atol=1e-5)


def test_blink_rate_and_attitude_styles():
    from core.listener.behaviour import blink_track, blend_style
    from core.listener.metrics import blinks

    b = blink_track(25 * 600, 26.0, np.random.default_rng(1))
    m = np.zeros((len(b), 56), np.float32)
    m[:, INDEX["eyeBlink_L"]] = m[:, INDEX["eyeBlink_R"]] = b
    assert 22 <= len(blinks(m)) / 10 <= 30
    amused = blend_style(np.array([0, 1, 0, 0]))
    half = blend_style(np.array([0.5, 0.5, 0, 0]))
    assert amused.smile_base > half.smile_base > 0.05


def test_attitude_sentences():
    from core.listener.attitude import attitude_weights
    w, _ = attitude_weights("bored")
    assert w.tolist() == [0, 0, 0, 1]
    w, desc = attitude_weights("he finds all of this hilarious")
    assert w.argmax() == 1 and "amused" in desc
    w, _ = attitude_weights("I don't believe a single word")
    assert w.argmax() == 2


def test_dit_adapter_is_causal():
    """Through the causal temporal adapter (causal convolution, masked cross-attention), listener
    frames 0..i see speaker input up to frame i only: changing the speaker's later frames leaves
    them unchanged, changing frame i itself does not."""
    from core.listener.model import ListenerConfig, ListenerDiT

    torch.manual_seed(0)
    cfg = ListenerConfig(width=32, layers=2, heads=2)
    net = ListenerDiT(cfg)
    for p in net.parameters():          # adaLN-Zero starts at zero: give it weights to test with
        torch.nn.init.normal_(p, std=0.15)
    i = 20
    x = torch.randn(1, i + 1, cfg.motion_dim)         # the window's frames up to i (live mode)
    spk = torch.randn(1, cfg.past + cfg.window, cfg.speaker_dim)
    att = torch.rand(1, 4)
    t = torch.tensor([300])
    a = net(x, t, {"speaker": spk, "attitude": att})
    later = spk.clone()
    later[:, cfg.past + i + 1:] += 3.0
    assert (a - net(x, t, {"speaker": later, "attitude": att})).abs().max() < 1e-5
    now = spk.clone()
    now[:, cfg.past + i] += 3.0
    b = net(x, t, {"speaker": now, "attitude": att})
    assert (a[:, i] - b[:, i]).abs().max() > 1e-3
    past = spk.clone()
    past[:, :cfg.past] += 3.0                          # the context before the window is seen
    assert (a - net(x, t, {"speaker": past, "attitude": att})).abs().max() > 1e-3


@pytest.fixture(scope="module")
def listener():
    from core.listener.generate import Listener, default_model_path
    if not default_model_path().exists():
        pytest.fail(f"shipped listener weights missing: {default_model_path()}")
    torch.set_num_threads(1)
    return Listener.load()


def _cond(listener, seconds=6.0, video=False):
    from core.listener.data import make_speaker, speaker_condition
    f0 = lambda t: 170 + 30 * np.sin(2 * np.pi * 0.4 * t)   # noqa: E731
    audio = _voice(seconds, f0)
    audio[int(2.5 * RATE):int(3.1 * RATE)] = 0           # a pause
    sp = make_speaker("test", audio)
    return sp, speaker_condition(sp, listener.mean, listener.std, use_video=video)


def test_generate_segments_joins_and_seeds(listener):
    from core.listener.metrics import jerk_at_joins
    sp, cond = _cond(listener, 8.0)
    att = np.array([1, 0, 0, 0], np.float32)
    m, info = listener.generate(cond, att, seed=1, steps=6)
    assert m.shape == (sp.frames, 56) and np.isfinite(m).all()
    assert m[:, :53].min() >= 0 and m[:, :53].max() <= 1
    assert info["segments"] == int(np.ceil(sp.frames / listener.cfg.window)) and len(info["joins"]) >= 2
    again, _ = listener.generate(cond, att, seed=1, steps=6)
    other, _ = listener.generate(cond, att, seed=2, steps=6)
    assert np.allclose(m, again) and not np.allclose(m, other)
    assert m[:, 53:].std(0).max() > 0.3                       # the head moves
    near, far = jerk_at_joins(info["normalised"], info["joins"])
    assert near < 2.0 * far                                   # refined joins are not jumps


def test_refined_joins_leave_no_seams(listener):
    """Jerk at the joins no larger than inside segments, and no new seam where the refined span
    meets the first pass (12 frames either side; a hard cut there was 1.4x the segments' jerk)."""
    from core.listener.metrics import jerk_at_joins
    sp, cond = _cond(listener, 12.0)
    att = np.array([1, 0, 0, 0], np.float32)
    near, far, edge = [], [], []
    for seed in range(3):
        _, info = listener.generate(cond, att, seed=seed, steps=6)
        x = info["normalised"]
        j = np.abs(np.diff(x, 3, axis=0)).mean(1)
        a, b = jerk_at_joins(x, info["joins"])
        near.append(a)
        far.append(b)
        edge += [j[k + d - 3:k + d + 1].mean() for k in info["joins"] for d in (-12, 12) if k + d + 1 < len(j)]
    assert np.mean(near) <= np.mean(far)
    assert np.mean(edge) <= 1.2 * np.mean(far)


def test_expression_calibration(listener):
    """The shipped weights carry an expression calibration fitted on training clips: it widens
    the expressions' spread toward real listening (few-step samples regress to the mean), leaves
    head rotation alone, and a damaged one is refused."""
    from core.listener.calibrate import apply_calibration, check_calibration
    assert listener.calibration is not None
    sp, cond = _cond(listener, 8.0)
    att = np.array([1, 0, 0, 0], np.float32)
    m, info = listener.generate(cond, att, seed=0, steps=6, blinks=False)
    plain, _ = listener.generate(cond, att, seed=0, steps=6, blinks=False, calibrate=False)
    unc = info["uncalibrated"]
    assert np.allclose(info["normalised"], apply_calibration(unc, listener.calibration), atol=1e-5)
    assert np.allclose(m[:, 53:], plain[:, 53:], atol=1e-4)               # pose untouched
    assert info["normalised"][:, :53].std(0).sum() > 1.2 * unc[:, :53].std(0).sum()
    bad = dict(listener.meta["calibration"], scale=[50.0] * 56)
    with pytest.raises(ValueError):
        check_calibration(bad)
    with pytest.raises(ValueError):
        check_calibration(dict(listener.meta["calibration"], mean_real=[0.0] * 3))


def test_generate_cancel_and_silence(listener):
    from core.diffusion import Cancelled
    from core.listener.data import make_speaker, speaker_condition
    sp, cond = _cond(listener, 8.0)
    with pytest.raises(Cancelled):
        listener.generate(cond, np.array([1, 0, 0, 0]), cancelled=lambda: True)
    quiet = make_speaker("silence", np.zeros(6 * RATE, np.float32))
    assert quiet.feat.silent
    m, _ = listener.generate(speaker_condition(quiet, listener.mean, listener.std), np.array([1, 0, 0, 0]))
    assert np.isfinite(m).all() and m[:, 53:].std(0).max() > 0.1   # idles, not frozen


def test_live_listener_frames(listener):
    from core.listener.generate import LiveListener
    live = LiveListener(listener, np.array([1, 0, 0, 0], np.float32), seed=0)
    audio = _voice(1.2, 190.0)
    frames = [live.push(audio[k * HOP:(k + 1) * HOP]) for k in range(25)]
    out = np.stack(frames)
    assert out.shape == (25, 56) and np.isfinite(out).all()
    assert np.abs(np.diff(out[:, 53:], axis=0)).max() < 10     # continuous, degrees per frame


def test_metrics():
    from core.listener.metrics import Clusters, backchannel_timing, frechet, nods
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (4000, 3))
    assert frechet(a, a) == pytest.approx(0, abs=1e-6)
    assert frechet(a + [2, 0, 0], a) == pytest.approx(4, rel=1e-3)
    real = rng.normal(0, 1, (2000, 56))
    cl = Clusters(real)
    assert cl.sid(real, "exp") > 4.5 and cl.sid(np.zeros((100, 56)), "pose") == 0
    m = np.zeros((250, 56), np.float32)
    for s in (50, 150):
        m[s:s + 12, 54] = 5 * np.sin(np.linspace(0, np.pi, 12)) ** 2
    n = nods(m)
    assert len(n) == 2 and abs(n[0] - 50) <= 3
    assert backchannel_timing(n, np.array([30, 200])) == 0.5


@pytest.mark.shared
def test_listen_command_writes_a_clip_with_audio(tmp_path):
    wav = MEDIA / "speech_b.wav"
    if not wav.exists():
        pytest.skip("shared speech missing")
    out = tmp_path / "l.json"
    r = subprocess.run([sys.executable, "main.py", "listen", "--speaker-audio", str(wav), "--attitude",
                        "amused", "--no-video", "--clip", str(out), "--out", str(tmp_path / "x.mp4")],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    from core.animation import load_clip
    clip = load_clip(out)
    assert clip.audio is not None and clip.duration == pytest.approx(clip.audio.duration, abs=0.1)
    assert "amused" in r.stderr
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF" + bytes(100))
    r = subprocess.run([sys.executable, "main.py", "listen", "--speaker-audio", str(bad), "--out",
                        str(tmp_path / "y.mp4")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.count("error: ") == 1 and "Traceback" not in r.stderr


def test_listen_no_face_and_lengths_differ(tmp_path):
    """A speaker video with no face and 2 s of sound over 3 s of picture: a notice, the audio's
    length, the MP4 side by side with the sound muxed."""
    from core.animation.audio import ffmpeg_exe
    video = tmp_path / "noface.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=3",
                    "-f", "lavfi", "-i", "sine=frequency=190:duration=2:sample_rate=16000", "-shortest:a", "0",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(video)], check=False,
                   capture_output=True)
    if not video.exists():   # older ffmpeg option syntax: let the streams keep their own lengths
        subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=3",
                        "-f", "lavfi", "-i", "sine=frequency=190:duration=2:sample_rate=16000",
                        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(video)], check=True,
                       capture_output=True)
    out, clip = tmp_path / "l.mp4", tmp_path / "l.json"
    r = subprocess.run([sys.executable, "main.py", "listen", "--speaker-video", str(video), "--side-by-side",
                        "--size", "128", "--out", str(out), "--clip", str(clip)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "no face" in r.stderr
    from core.animation import load_clip
    c = load_clip(clip)
    assert c.duration == pytest.approx(c.audio.duration, abs=0.08) and c.duration < 2.6
    info = subprocess.run([ffmpeg_exe(), "-i", str(out)], capture_output=True, text=True).stderr
    assert "256x128" in info and "Audio: aac" in info


@pytest.mark.shared
def test_listen_audio_and_video_of_different_lengths(tmp_path):
    video, wav = MEDIA / "speaker_b.mp4", MEDIA / "speech_d.wav"     # ~6 s of face, 8 s of speech
    if not (video.exists() and wav.exists()):
        pytest.skip("shared media missing")
    clip = tmp_path / "l.json"
    r = subprocess.run([sys.executable, "main.py", "listen", "--speaker-video", str(video), "--speaker-audio",
                        str(wav), "--no-video", "--clip", str(clip), "--out", str(tmp_path / "x.mp4")],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "differ in length" in r.stderr
    from core.animation import load_clip
    assert load_clip(clip).duration == pytest.approx(8.0, abs=0.2)


def test_generated_listener_blinks_at_a_listeners_rate(listener):
    """The network's samples never close the lids; the blink layer does, at the attitude's rate
    (real listeners 15-30 blinks/min), and leaves the rest of the motion alone."""
    from core.listener.metrics import blink_rate
    sp, cond = _cond(listener, 40.0)
    att = np.array([1, 0, 0, 0], np.float32)
    m, info = listener.generate(cond, att, seed=3, steps=4)
    plain, _ = listener.generate(cond, att, seed=3, steps=4, blinks=False)
    assert 12 <= blink_rate(m) <= 40, blink_rate(m)
    assert blink_rate(plain) < blink_rate(m)
    lids = [INDEX["eyeBlink_L"], INDEX["eyeBlink_R"]]
    others = np.ones(m.shape[1], bool)
    others[lids] = False
    assert np.array_equal(m[:, others], plain[:, others]) and np.all(m[:, lids] >= plain[:, lids])
