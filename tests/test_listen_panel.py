"""The Listener dock (Xvfb + pytest-qt): a listener clip from a speaker file joins the project's
clips; live listening with a file playing the speaker's part drives the avatar; no microphone ->
a clear message."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.gui, pytest.mark.shared]
WAV = Path(__file__).resolve().parents[2] / "shared" / "media" / "speech_b.wav"
needs_media = pytest.mark.skipif(not WAV.exists(), reason=f"shared speech missing: {WAV}")


@pytest.fixture
def panel(qtbot):
    from app.panels.listen_panel import ListenPanel
    from core.avatar import Avatar

    p = ListenPanel(Avatar(np.zeros(8, np.float32)))
    qtbot.addWidget(p)
    yield p
    p.shutdown()
    if p.runner is not None:
        p.runner.wait(60_000)


@needs_media
def test_listen_to_file_adds_a_clip(panel, qtbot):
    panel.attitude_edit.setText("amused")
    done = []
    panel.listen_to_file(str(WAV), on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=180_000)
    clip = panel.avatar.clips[-1]
    assert clip is done[0] and "amused" in clip.name and clip.audio is not None
    assert clip.duration == pytest.approx(5.0, abs=0.2)
    assert clip.rotation().std(0).max() > 0.2                    # the head moves


@needs_media
def test_live_with_a_file_as_speaker_and_no_microphone(panel, qtbot):
    panel.set_live(True)                  # no PortAudio here: says so, asks for a file (hidden: none)
    assert not panel.live and "microphone" in panel.notice.text()
    panel.set_live(True, file=str(WAV))
    assert panel.live
    qtbot.waitUntil(lambda: panel.frames_shown >= 15, timeout=60_000)
    pose = panel.avatar.head_pose
    assert np.isfinite(pose).all()
    panel.set_live(False)
    assert not panel.live
