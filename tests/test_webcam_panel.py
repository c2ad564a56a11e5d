"""The webcam panel on a video file standing in for a camera (Xvfb + pytest-qt)."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from core.paths import SHARED_DIR

pytestmark = pytest.mark.gui
CLIP = SHARED_DIR / "media" / "speaker_a.mp4"
needs_media = pytest.mark.skipif(not CLIP.exists(), reason=f"shared clip missing: {CLIP} (../shared/media absent)")


@pytest.fixture
def panel(qtbot):
    from app.panels.webcam_panel import WebcamPanel
    from core.avatar import Avatar

    p = WebcamPanel(Avatar(np.zeros(8, np.float32)))
    qtbot.addWidget(p)
    p.resize(640, 720)
    p.show()
    qtbot.waitExposed(p)
    yield p
    p.shutdown()
    qtbot.waitUntil(lambda: not p.running, timeout=10_000)


@needs_media
def test_video_file_frames_timeline_puppeteering_and_recording(panel, qtbot, tmp_path):
    from core.fer.pipeline import CSV_COLUMNS

    panel.set_video_file(CLIP)
    assert panel.source_spec() == str(CLIP)
    panel.smoothing_slider.setValue(0)
    panel.drive_check.setChecked(True)
    panel.start()
    qtbot.waitUntil(lambda: panel.frames_shown >= 5, timeout=20_000)

    # display and timeline
    pix = panel.video_label.pixmap()
    assert pix is not None and not pix.isNull() and pix.width() > 0
    assert panel.last_image is not None and panel.last_image.size > 0
    t, probs = panel.timeline_data()
    assert len(t) >= 5 and probs.shape[1] == 7
    assert np.isfinite(probs).any()
    assert len(panel.curves["happy"].getData()[0]) >= 5
    # the legend under the plot names every class with the primary face's current probability
    import re
    shown = {m[0]: float(m[1]) for m in re.findall(r"(\w+) (\d\.\d\d)", panel.legend_label.text())}
    assert all(c in panel.legend_label.text() for c in panel.classes)
    if np.isfinite(probs[-1]).all():  # a face in the last frame
        assert set(shown) == set(panel.classes)
        assert np.allclose([shown[c] for c in panel.classes], probs[-1], atol=0.006)

    # puppeteering: the tracked face moves the avatar
    assert panel.last_raw_weights is not None and panel.last_raw_weights.shape == (53,)
    assert panel.avatar.expression.max() > 0.05

    # the tracked head pose turns the avatar (relative to no calibration: the raw pose)
    assert panel.last_raw_pose is not None
    assert np.allclose(panel.avatar.head_pose, np.clip(panel.puppet.pose, -90, 90), atol=1e-4)

    # calibrate neutral: the current face maps to ~0, and the head faces forward
    assert panel.calibrate_neutral()
    assert np.allclose(panel.apply_neutral(panel.last_raw_weights), 0.0, atol=1e-6)
    assert np.allclose(panel.current_weights, 0.0, atol=1e-6)
    assert np.allclose(panel.avatar.expression, 0.0, atol=1e-6)
    assert np.allclose(panel.avatar.head_pose, 0.0)

    # record a few frames
    out = tmp_path / "take.mp4"
    assert panel.start_recording(out)
    rec = panel.worker.recorder
    qtbot.waitUntil(lambda: rec.frames >= 6, timeout=20_000)
    panel.stop_recording()
    assert out.exists() and out.with_suffix(".csv").exists()
    assert not list(tmp_path.glob(".*.part"))
    import imageio.v2 as imageio

    reader = imageio.get_reader(str(out), "ffmpeg")
    frames = [f for f in reader]
    reader.close()
    assert len(frames) >= 1 and frames[0].ndim == 3
    with open(out.with_suffix(".csv"), newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) - 1 == rec.rows >= rec.frames  # one face in the clip: one row per frame
    frame_ids = [int(r[0]) for r in rows[1:]]
    assert sorted(set(frame_ids)) == list(range(rec.frames)) or len(set(frame_ids)) >= rec.frames - 1
    assert len(rows) - 1 == len(frame_ids)

    panel.stop()
    qtbot.waitUntil(lambda: not panel.running, timeout=10_000)
    assert panel.start_button.isEnabled()


def test_missing_video_file_gives_clear_status(panel, qtbot, tmp_path):
    missing = tmp_path / "nope.mp4"
    panel.set_video_file(missing)
    panel.start()
    qtbot.waitUntil(lambda: not panel.running, timeout=10_000)
    text = panel.status_label.text()
    assert text.startswith("error") and "not found" in text and "nope.mp4" in text
    assert panel.frames_shown == 0
