"""Expression captions (core.caption): events from clips, the paragraph, the main character,
the FEC-Bench-style score, the CLI on a real clip and on a video without a face."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.animation.clip import Clip
from core.caption import NoFaceError, caption_clip, caption_video
from core.caption.evaluate import RefsError, lcs, read_refs, score_clip
from core.caption.events import IDX, detect_events, oscillations
from core.caption.track import choose_main
from core.expressions import NUM_EXPRESSIONS

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"
FPS = 25.0


def _clip(seconds: float, **spans) -> Clip:
    """A clip with weights raised to a value over [start, end) seconds: name=(start, end, value)."""
    n = int(seconds * FPS)
    w = np.zeros((n, NUM_EXPRESSIONS), np.float32)
    t = np.arange(n) / FPS
    rng = np.random.default_rng(0)
    w += rng.uniform(0, 0.04, w.shape).astype(np.float32)        # tracker noise at rest
    for name, (a, b, v) in spans.items():
        ramp = np.clip(np.minimum(t - a, b - t) / 0.2, 0, 1)      # 0.2 s onset and offset
        w[:, IDX[name]] = np.maximum(w[:, IDX[name]], v * ramp)
    return Clip.from_streams(w, fps=FPS)


def test_a_smile_mid_clip_is_told_with_its_time():
    clip = _clip(8.0, mouthSmile_L=(3.0, 5.0, 0.8), mouthSmile_R=(3.0, 5.0, 0.8))
    cap = caption_clip(clip)
    smiles = [e for e in cap.events if e.type == "smile"]
    assert len(smiles) == 1
    assert abs(smiles[0].start - 3.0) < 0.35 and abs(smiles[0].end - 5.0) < 0.35
    assert "smiles" in cap.text and "0:03" in cap.text
    assert not [e for e in cap.events if e.type not in ("smile",)]   # nothing else happened


def test_surprise_reads_as_one_expression_and_order_is_kept():
    clip = _clip(10.0, browInnerUp_L=(1.0, 3.0, 0.9), browInnerUp_R=(1.0, 3.0, 0.9),
                 jawOpen=(1.2, 3.0, 0.8), browDown_L=(6.0, 8.0, 0.8), browDown_R=(6.0, 8.0, 0.8))
    cap = caption_clip(clip)
    types = [e.type for e in cap.events]
    assert types.index("brow_raise") < types.index("frown")
    assert "surprised" in cap.text and "lowers the brows" in cap.text
    assert cap.text.index("surprised") < cap.text.index("lowers the brows")


def test_blinks_are_counted_and_a_long_closure_is_an_event():
    w = _clip(12.0).data[:, :NUM_EXPRESSIONS].copy()
    for t0 in (1.0, 3.0, 5.0, 7.0):                      # four 0.15 s blinks
        a = int(t0 * FPS)
        w[a:a + 4, IDX["eyeBlink_L"]] = w[a:a + 4, IDX["eyeBlink_R"]] = 0.95
    w[int(9 * FPS):int(10.5 * FPS), [IDX["eyeBlink_L"], IDX["eyeBlink_R"]]] = 0.95   # 1.5 s closed
    cap = caption_clip(Clip.from_streams(w, fps=FPS))
    assert sum(e.type == "blink" for e in cap.events) == 4
    closed = [e for e in cap.events if e.type == "eyes_closed"]
    assert len(closed) == 1 and abs(closed[0].start - 9.0) < 0.2
    assert "blinks 4 times" in cap.text


def test_nods_are_pitch_oscillations_and_drift_is_not():
    t = np.arange(int(6 * FPS)) / FPS
    nod = np.where((t > 2) & (t < 3.2), 8 * np.sin(2 * np.pi * 2.5 * (t - 2)), 0.0)
    drift = 10 * t / t[-1]                               # a slow look down is not a nod
    ev = oscillations((nod + drift).astype(np.float32), FPS, 4.0, "head_nod")
    assert len(ev) == 1 and 1.7 < ev[0].start < 2.4 and 3.0 < ev[0].end < 3.6
    assert not oscillations(drift.astype(np.float32), FPS, 4.0, "head_nod")


def test_speech_is_talking_not_a_row_of_jaw_events():
    t = np.arange(int(6 * FPS)) / FPS
    w = _clip(6.0).data[:, :NUM_EXPRESSIONS].copy()
    w[:, IDX["jawOpen"]] = np.where(t > 1, 0.25 + 0.25 * np.sin(2 * np.pi * 4 * t), 0.02)
    ev = detect_events(w, np.zeros((len(w), 3), np.float32), FPS)
    assert any(e.type == "talking" for e in ev)
    assert not any(e.type == "jaw_drop" for e in ev)


def test_main_character_is_followed_through_a_cut():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0, 1, 96), rng.uniform(0, 1, 96)     # two people's face colours
    tracks = {(0, 0): {"score": 5.0, "hist": a}, (0, 1): {"score": 1.0, "hist": b},
              (1, 0): {"score": 4.0, "hist": b}, (1, 3): {"score": 0.5, "hist": a * 0.9 + rng.uniform(0, 0.05, 96)},
              (2, 0): {"score": 2.0, "hist": b}}
    main = choose_main(tracks, 3)
    assert main[0] == (0, 0) and main[1] == (1, 3)      # the smaller face that is the same person
    assert 2 not in main                                 # nobody like them in shot 2


def test_score_is_f1_times_lcs():
    ref = [{"type": "smile", "start": 1, "end": 2}, {"type": "frown", "start": 3, "end": 4},
           {"type": "jaw_drop", "start": 5, "end": 6}]
    assert score_clip("x", ref, ref).score == pytest.approx(1.0)
    pred = [{"type": "frown", "start": 3.2, "end": 3.8}, {"type": "smile", "start": 1.5, "end": 2.5},
            {"type": "wink", "start": 7, "end": 8}]
    s = score_clip("x", pred, ref)
    assert s.precision == pytest.approx(2 / 3) and s.recall == pytest.approx(2 / 3)
    assert s.lcs == pytest.approx(2 / 3) and s.score == pytest.approx((2 / 3) ** 2)
    assert lcs(list("abcbdab"), list("bdcaba")) == 4
    # blinks and talking are summaries, never scored
    assert score_clip("x", ref + [{"type": "blink", "start": 0, "end": 0.1}], ref).score == pytest.approx(1.0)


def test_reference_file_errors_are_clear(tmp_path):
    bad = tmp_path / "refs.json"
    bad.write_text("{not json")
    with pytest.raises(RefsError, match="not a JSON"):
        read_refs(bad)
    bad.write_text(json.dumps({"clips": {"a": {"events": [{"type": "smile", "start": 3, "end": 1}]}}}))
    with pytest.raises(RefsError, match="start <= end"):
        read_refs(bad)
    refs = read_refs(ROOT / "resources" / "captions" / "media_refs.json")
    assert {r["split"] for r in refs.values()} == {"dev", "test"}


def _no_face_video(path: Path) -> Path:
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (160, 120))
    rng = np.random.default_rng(1)
    for _ in range(25):
        vw.write(rng.integers(0, 255, (120, 160, 3), np.uint8))
    vw.release()
    return path


def test_a_video_without_a_face_says_so(tmp_path):
    video = _no_face_video(tmp_path / "noise.avi")
    with pytest.raises(NoFaceError, match="No face was found"):
        caption_video(video)
    r = subprocess.run([sys.executable, str(ROOT / "main.py"), "caption", str(video)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("error: No face was found")
    assert "Traceback" not in r.stderr


@pytest.mark.skipif(not (MEDIA / "motion_d12.mp4").exists(), reason="needs ../shared/media")
def test_caption_of_a_real_clip(tmp_path):
    """motion_d12 smiles broadly in its first seconds (hand reference: 0.9-2.6 s)."""
    out = tmp_path / "cap.json"
    r = subprocess.run([sys.executable, str(ROOT / "main.py"), "caption", str(MEDIA / "motion_d12.mp4"),
                        "--json", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.loads(out.read_text())
    smiles = [e for e in data["events"] if e["type"] == "smile"]
    assert smiles and smiles[0]["start"] < 1.5 and smiles[0]["end"] > 2.0
    assert "smiles" in data["caption"]


@pytest.mark.gui
def test_caption_panel_captions_the_current_clip_off_the_gui_thread(qtbot, tmp_path):
    from app.panels.caption_panel import CaptionPanel
    from app.workers import TaskRunner

    runner = TaskRunner()
    clip = _clip(8.0, mouthSmile_L=(3.0, 5.0, 0.8), mouthSmile_R=(3.0, 5.0, 0.8))
    panel = CaptionPanel(runner, lambda: clip)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.captioned, timeout=120_000):
        assert panel.caption_current_clip() is not None
    assert "smiles" in panel.text.toPlainText()
    assert panel.table.rowCount() == 1 and panel.table.item(0, 2).text() == "smile"
    saved = panel.save_json(tmp_path / "c.json")
    assert json.loads(saved.read_text())["events"][0]["type"] == "smile"
    panel.clip_source = lambda: None                   # no clip: a message, nothing started
    assert panel.caption_current_clip() is None and "No clip" in panel.status.text()
    runner.wait(60_000)


@pytest.mark.gui
def test_caption_panel_reports_a_video_without_a_face(qtbot, tmp_path):
    from app.panels.caption_panel import CaptionPanel
    from app.workers import TaskRunner

    runner = TaskRunner()
    panel = CaptionPanel(runner)
    qtbot.addWidget(panel)
    panel.caption_video(_no_face_video(tmp_path / "noise.avi"))
    qtbot.waitUntil(lambda: panel.status.text().startswith("error:"), timeout=180_000)
    assert "No face was found" in panel.status.text()
    assert panel.video_button.isEnabled()
    runner.wait(60_000)
