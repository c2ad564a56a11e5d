"""The timeline panel (Xvfb + pytest-qt): scrub and play drive the avatar, keys, smoothing,
trim, recording into a clip, export off the GUI thread, the no-sound notice."""
from __future__ import annotations

import numpy as np
import pytest

from core.expressions import INDEX

pytestmark = pytest.mark.gui


def _ramp_clip(n=50):
    from core.animation import Clip
    w = np.zeros((n, 53), np.float32)
    w[:, INDEX["jawOpen"]] = np.linspace(0, 1, n)
    yaw = np.stack([np.linspace(-20, 20, n), np.zeros(n), np.zeros(n)], 1)
    return Clip.from_streams(w, yaw, fps=25, name="ramp")


@pytest.fixture
def panel(qtbot, face_model):
    from app.panels.timeline_panel import TimelinePanel
    from core.avatar import Avatar

    av = Avatar(np.zeros(face_model.identity_dim, np.float32), clips=[_ramp_clip()])
    p = TimelinePanel(av, model=face_model)
    qtbot.addWidget(p)
    p.resize(1000, 400)
    p.show()
    qtbot.waitExposed(p)
    yield p
    p.shutdown()
    if p.runner is not None:
        p.runner.wait(20_000)


def test_scrub_and_play_drive_the_avatar(panel, qtbot):
    av = panel.avatar
    assert panel.clip is av.clips[0] and "jawOpen" in panel.curves
    panel.seek(1.0)                                  # frame 25 of 50
    assert av.weight("jawOpen") == pytest.approx(25 / 49, abs=1e-3)
    assert av.head_pose[0] == pytest.approx(-20 + 40 * 25 / 49, abs=0.05)
    panel.playline.setValue(0.4)                     # dragging the playhead line scrubs too
    assert av.weight("jawOpen") == pytest.approx(10 / 49, abs=1e-3)
    # no sound device here: the panel says so and plays silently
    assert "Sound:" in panel.notice.text() and panel.audio.available is False
    panel.loop_check.setChecked(False)
    panel.seek(0.0)
    panel.set_playing(True)
    qtbot.waitUntil(lambda: panel.playhead.time > 0.5, timeout=20_000)
    assert av.weight("jawOpen") > 0.2
    qtbot.waitUntil(lambda: not panel.playhead.playing, timeout=20_000)   # stops at the end
    assert av.weight("jawOpen") == pytest.approx(1.0, abs=1e-3) and panel.play_button.text().endswith("Play")


def test_keys_smoothing_trim(panel):
    clip = panel.clip
    panel.seek(0.4)                                  # frame 10
    panel.channel_list.setCurrentRow(INDEX["mouthSmile_L"])
    panel.avatar.set_weight("mouthSmile_L", 0.8)     # pose, then key it
    panel.set_key_here()
    assert clip.keys_of("mouthSmile_L")[0].value == pytest.approx(0.8)
    panel.seek(1.2)
    panel.avatar.set_weight("mouthSmile_L", 0.2)
    panel.interp_combo.setCurrentText("linear")
    panel.set_key_here("mouthSmile_L")
    panel.seek(0.8)                                  # frame 20, between the keys (smooth segment)
    assert 0.2 < panel.avatar.weight("mouthSmile_L") < 0.8
    panel.select_key("mouthSmile_L", 30)
    panel.move_selected_key(40, 0.5)
    assert [k.frame for k in clip.keys_of("mouthSmile_L")] == [10, 40]
    assert panel.avatar.dirty
    panel.delete_selected_key()
    assert len(clip.keys_of("mouthSmile_L")) == 1
    # smoothing a selection of a noisy channel
    rng = np.random.default_rng(0)
    clip.data[:, INDEX["browDown_L"]] = rng.uniform(0, 1, clip.frames)
    for i in range(panel.channel_list.count()):
        it = panel.channel_list.item(i)
        it.setCheckState(pytest.importorskip("PySide6.QtCore").Qt.Checked if it.text() == "browDown_L"
                         else pytest.importorskip("PySide6.QtCore").Qt.Unchecked)
    before = clip.data[:, INDEX["browDown_L"]].copy()
    panel.set_selection(0.4, 1.6)
    panel.smooth_selection()
    after = clip.data[:, INDEX["browDown_L"]]
    assert np.abs(np.diff(after[15:35])).mean() < 0.5 * np.abs(np.diff(before[15:35])).mean()
    assert np.array_equal(after[:5], before[:5])
    panel.set_selection(0.4, 1.2)
    panel.trim_to_selection()
    assert clip.frames == 21 and panel.clip is clip and "(0.8 s)" in panel.clip_combo.currentText()


def test_record_and_export(panel, qtbot, tmp_path):
    av = panel.avatar
    panel.set_recording(True)
    for i in range(40):                              # the puppet moves the avatar meanwhile
        av.set_weight("jawOpen", i / 40)
        qtbot.wait(15)
    qtbot.waitUntil(lambda: panel.recorder is not None and panel.recorder.frames >= 10, timeout=20_000)
    panel.set_recording(False)
    assert len(av.clips) == 2 and panel.clip is av.clips[1]
    rec = av.clips[1]
    assert rec.frames >= 10 and rec.weights()[:, INDEX["jawOpen"]].max() > 0.3
    assert np.all(np.diff(rec.data[:, INDEX["jawOpen"]]) >= -1e-6)      # sampled in order
    out = tmp_path / "rec.csv"
    done = []
    panel.export(str(out), on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=30_000)
    assert out.read_text().count("\n") == rec.frames + 1
    mp4 = tmp_path / "rec.mp4"                       # rendered off the GUI thread, cancellable
    done.clear()
    panel.export(str(mp4), on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=180_000)
    assert done[0]["frames"] == rec.frames and mp4.stat().st_size > 1000
    panel.code_check.setChecked(True)                # researchers: the learned expression code
    assert "code0" in panel.curves and len(panel.curves["code0"].getData()[0]) == rec.frames


def test_track_video_into_a_clip(panel, qtbot):
    from core.paths import SHARED_DIR
    video = SHARED_DIR / "media" / "speaker_b.mp4"
    if not video.exists():
        pytest.skip("shared media missing")
    done = []
    panel.track_video(str(video), on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=120_000)
    assert panel.clip is done[0] and done[0].audio is not None and done[0].frames > 100
    assert "speaker_b" in panel.clip_combo.currentText()
