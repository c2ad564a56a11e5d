"""The webcam panel with the one-stage detector engine (Xvfb + pytest-qt)."""
from __future__ import annotations

import numpy as np
import pytest

from core.fer.detector import DEFAULT_VSS
from core.paths import SHARED_DIR

pytestmark = pytest.mark.gui
CLIP = SHARED_DIR / "media" / "speaker_a.mp4"


@pytest.mark.skipif(not CLIP.exists() or not DEFAULT_VSS.exists(), reason="shared clip or detector weights missing")
def test_one_stage_engine_shows_boxes_and_expressions_without_puppeteering(qtbot):
    from app.panels.webcam_panel import WebcamPanel
    from core.avatar import Avatar

    panel = WebcamPanel(Avatar(np.zeros(8, np.float32)))
    qtbot.addWidget(panel)
    panel.resize(640, 720)
    panel.show()
    qtbot.waitExposed(panel)
    try:
        panel.engine_combo.setCurrentIndex(panel.engine_combo.findData("one-stage"))
        panel.heatmap_check.setChecked(True)        # ignored by the one-stage engine, must not break it
        panel.au_check.setChecked(True)
        panel.set_video_file(CLIP)
        panel.start()
        assert not panel.engine_combo.isEnabled()   # the engine is chosen before starting
        qtbot.waitUntil(lambda: panel.frames_shown >= 5, timeout=30_000)
        assert "error" not in panel.status_label.text()
        t, probs = panel.timeline_data()
        assert len(t) >= 5 and probs.shape[1] == 7
        if panel.last_results:                     # a face found: a box in the frame, probabilities
            r = panel.last_results[0]
            x, y, w, h = r.face.box
            assert w > 10 and h > 10 and abs(float(r.probs.sum()) - 1) < 1e-3
            assert panel.pose_label.text() == "head: no pose from the one-stage detector"
        assert panel.avatar.expression.max() == 0  # nothing to puppeteer with
    finally:
        panel.shutdown()
        qtbot.waitUntil(lambda: not panel.running, timeout=10_000)
    assert panel.engine_combo.isEnabled()
