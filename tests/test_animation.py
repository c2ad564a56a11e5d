"""Animation clips (core/animation): keys, smoothing, trim, gaze, the clip file, clips in the
project, video tracking, and export to GLB (Khronos validator), MP4 (with audio) and CSV."""
from __future__ import annotations

import io
import json
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.animation import AudioTrack, Clip, ClipError, clip_from_bytes, clip_to_bytes, load_clip, save_clip
from core.animation.clip import CHANNEL_INDEX, GAZE, NUM_CHANNELS, gaze_from_weights, weights_with_gaze
from core.expressions import INDEX

SHARED = Path(__file__).resolve().parents[2] / "shared" / "media"


def _clip(n=40, seed=0) -> Clip:
    rng = np.random.default_rng(seed)
    return Clip.from_streams(rng.uniform(0, 0.5, (n, 53)), rng.normal(0, 4, (n, 3)),
                             rng.normal(0, 0.3, (n, 3)), fps=25, name="t")


def test_keys_linear_smooth_hold_and_edit():
    c = _clip()
    c.set_key("jawOpen", 10, 0.0, "linear")
    c.set_key("jawOpen", 20, 1.0, "smooth")
    c.set_key("jawOpen", 30, 0.0)
    curve = c.curve("jawOpen")
    assert curve[:11].max() == 0 and curve[15] == pytest.approx(0.5)       # held, then linear
    assert curve[25] == pytest.approx(0.5, abs=1e-6)                           # smoothstep midpoint
    assert curve[22] > 1 - 0.3 and curve[22] > 1.0 - (22 - 20) / 10           # eased: above the line
    assert np.all(curve[30:] == 0)
    assert np.allclose(c.weights()[:, INDEX["jawOpen"]], curve)
    before = c.data.copy()
    c.move_key("jawOpen", 20, 18, 0.6)
    assert c.curve("jawOpen")[18] == pytest.approx(0.6)
    assert c.delete_key("jawOpen", 18) and c.delete_key("jawOpen", 10) and c.delete_key("jawOpen", 30)
    assert np.array_equal(c.curve("jawOpen"), before[:, INDEX["jawOpen"]])   # data come back
    k = c.set_key("head.yaw", 5)                                                # value from the data
    assert k.value == pytest.approx(float(c.data[5, CHANNEL_INDEX["head.yaw"]]))
    with pytest.raises(ValueError):
        c.set_key("nope", 1, 0.0)
    with pytest.raises(ValueError):
        c.set_key("jawOpen", 400, 0.0)


def test_smoothing_selection_and_trim():
    c = _clip(100)
    yaw = CHANNEL_INDEX["head.yaw"]
    raw = c.data.copy()
    c.smooth(["head.yaw"], 40, 80, sigma=3)
    jitter = lambda x: np.abs(np.diff(x, 2)).mean()   # noqa: E731
    assert jitter(c.data[45:75, yaw]) < 0.3 * jitter(raw[45:75, yaw])
    assert np.array_equal(c.data[:30, yaw], raw[:30, yaw]) and np.array_equal(c.data[90:, yaw], raw[90:, yaw])
    assert np.array_equal(np.delete(c.data, yaw, 1), np.delete(raw, yaw, 1))   # other channels untouched
    c.set_key("jawOpen", 50, 0.7)
    c.add_marker(60, "nod")
    c.audio = AudioTrack(np.linspace(-1, 1, 4 * 16000), 16000)   # 4 s over a 4 s clip
    c.trim(40, 70)
    assert c.frames == 30 and c.keys[0].frame == 10 and c.markers[0].frame == 20
    assert c.audio.duration == pytest.approx(30 / 25) and c.audio.samples[0] == pytest.approx(
        np.linspace(-1, 1, 4 * 16000)[int(40 / 25 * 16000)], abs=1e-4)
    with pytest.raises(ValueError):
        c.trim(10, 10)


def test_gaze_is_the_eye_direction():
    w = np.zeros((2, 53), np.float32)
    w[0, INDEX["eyeLookOut_L"]] = w[0, INDEX["eyeLookIn_R"]] = 0.5
    w[1, INDEX["eyeLookDown_L"]] = w[1, INDEX["eyeLookDown_R"]] = 1.0
    g = gaze_from_weights(w)
    assert g[0, 0] > 10 and g[0, 1] == 0 and g[1, 1] < -20
    assert np.allclose(weights_with_gaze(np.zeros((2, 53)), g), w)
    c = Clip.from_streams(w, fps=10)
    c.set_key("gaze.x", 0, -15.0)            # look the other way: the eyeLook weights follow
    ev = c.weights()
    assert ev[0, INDEX["eyeLookIn_L"]] == pytest.approx(0.5) and ev[0, INDEX["eyeLookOut_L"]] == 0


def test_clip_file_round_trip_and_damage(tmp_path):
    c = _clip()
    c.set_key("mouthSmile_L", 3, 0.9, "linear")
    c.add_marker(7, "cue")
    c.audio = AudioTrack(np.sin(np.arange(8000) / 5.0) * 0.5, 8000, 0.25)
    p = save_clip(c, tmp_path / "a.json")
    d = load_clip(p)
    assert np.array_equal(d.data, c.data) and d.fps == 25 and d.keys == c.keys and d.markers == c.markers
    assert d.audio.rate == 8000 and d.audio.offset == 0.25
    assert np.abs(d.audio.samples - c.audio.samples).max() < 1e-4
    # channels are matched by name: a file with them reversed reads the same
    doc = json.loads(clip_to_bytes(c))
    vals = np.frombuffer(__import__("base64").b64decode(doc["data"]["bytes"]), "<f4").reshape(40, NUM_CHANNELS)
    doc["channels"] = doc["channels"][::-1]
    doc["data"]["bytes"] = __import__("base64").b64encode(vals[:, ::-1].astype("<f4").tobytes()).decode()
    assert np.array_equal(clip_from_bytes(json.dumps(doc).encode()).data, c.data)
    bad = {"version": 99, "fps": -1, "frames": 10 ** 9, "keys": [["jawOpen", 999, 0.5, "linear"]],
           "markers": [[1]], "audio": {"rate": 8000}}
    for field, value in bad.items():
        broken = json.loads(clip_to_bytes(c))
        broken[field] = value
        with pytest.raises(ClipError) as e:
            clip_from_bytes(json.dumps(broken).encode(), "x.json")
        assert "x.json" in str(e.value)
    broken = json.loads(clip_to_bytes(c))
    broken["data"]["bytes"] = broken["data"]["bytes"][:-8]
    with pytest.raises(ClipError, match="base64"):
        clip_from_bytes(json.dumps(broken).encode())
    with pytest.raises(ClipError, match="not valid JSON"):
        clip_from_bytes(b"{" + clip_to_bytes(c)[:100])


def test_project_keeps_clips_and_old_projects_open(tmp_path):
    from core.avatar import Avatar
    from core.project import FORMAT_VERSION, load_project, save_project

    assert FORMAT_VERSION == 4
    c1, c2 = _clip(20, 1), _clip(7, 2)
    c1.set_key("jawOpen", 4, 0.5)
    av = Avatar(np.zeros(16, np.float32), name="A", clips=[c1, c2])
    p = save_project(av, tmp_path / "a.likeness")
    back = load_project(p)
    assert [c.frames for c in back.clips] == [20, 7] and back.clips[0].keys == c1.keys
    assert np.array_equal(back.clips[1].data, c2.data)
    # a format-3 file (written before clips existed) opens with none
    raw = zipfile.ZipFile(save_project(Avatar(np.zeros(16, np.float32)), tmp_path / "b.likeness"))
    m = json.loads(raw.read("project.json"))
    m["format_version"] = 3
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for n in raw.namelist():
            zf.writestr(n, json.dumps(m) if n == "project.json" else raw.read(n))
    (tmp_path / "old.likeness").write_bytes(out.getvalue())
    assert load_project(tmp_path / "old.likeness").clips == []


def test_csv_export(tmp_path):
    from core.animation.export import export_clip_csv
    c = _clip(12)
    c.add_marker(3, "here")
    rows = export_clip_csv(c, tmp_path / "c.csv").read_text().splitlines()
    head = rows[0].split(",")
    assert len(rows) == 13 and head[:3] == ["frame", "time_s", "browDown_L"] and head[-1] == "marker"
    r3 = rows[4].split(",")
    assert float(r3[1]) == pytest.approx(3 / 25) and r3[-1] == "here"
    assert float(r3[2 + CHANNEL_INDEX["head.yaw"]]) == pytest.approx(c.evaluated()[3, CHANNEL_INDEX["head.yaw"]],
                                                                     rel=1e-3)


def test_glb_animation_validates(tmp_path, face_model):
    from test_head_parts import _validator, validate_glb

    from core.animation.export import export_clip_glb
    from core.avatar import Avatar
    from core.export import read_glb_json

    av = Avatar(face_model.mean_identity(), name="Anim")
    av.set_hair(style="bald")
    n = 12
    w = np.zeros((n, 53), np.float32)
    w[:, INDEX["jawOpen"]] = np.linspace(0, 1, n)
    clip = Clip.from_streams(w, np.stack([np.linspace(-20, 20, n), np.zeros(n), np.zeros(n)], 1), fps=24)
    glb = export_clip_glb(av, clip, tmp_path / "a.glb", face_model, resolution=48)
    g = read_glb_json(glb)
    anim = g["animations"][0]
    paths = [ch["target"]["path"] for ch in anim["channels"]]
    assert paths.count("rotation") == 1 and paths.count("weights") >= 3     # skin, eyes, teeth...
    skin = next(ch for ch in anim["channels"] if ch["target"]["path"] == "weights" and ch["target"]["node"] == 0)
    out = g["accessors"][anim["samplers"][skin["sampler"]]["output"]]
    assert out["count"] == n * 53
    times = g["accessors"][anim["samplers"][0]["input"]]
    assert times["count"] == n and times["max"][0] == pytest.approx((n - 1) / 24)
    head = g["nodes"][g["scenes"][0]["nodes"][0]]
    assert head["name"] == "head" and head["children"] == [0]
    if _validator() is None:
        pytest.skip("gltf-validator not installed")
    report = validate_glb(glb)
    assert report["numErrors"] == 0, report["messages"][:5]


def test_mp4_has_the_avatar_moving_and_the_audio(tmp_path):
    import imageio.v3 as iio

    from core.animation.audio import ffmpeg_exe
    from core.animation.export import export_clip_mp4

    n = 10
    w = np.zeros((n, 53), np.float32)
    w[5:, INDEX["jawOpen"]] = 1.0
    clip = Clip.from_streams(w, fps=10)
    clip.audio = AudioTrack(0.5 * np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000), 16000)
    stats = export_clip_mp4(clip, tmp_path / "a.mp4", None, size=128, resolution=48)
    assert stats["frames"] == n and stats["audio"]
    frames = iio.imread(tmp_path / "a.mp4")
    assert frames.shape == (n, 128, 128, 3)
    diff = np.abs(frames[8].astype(int) - frames[2].astype(int)).max(-1)
    assert (diff > 40).sum() > 30                       # the jaw opened
    assert (np.abs(frames[3].astype(int) - frames[2].astype(int)).max(-1) > 40).sum() < 10
    info = subprocess.run([ffmpeg_exe(), "-i", str(tmp_path / "a.mp4")], capture_output=True, text=True).stderr
    assert "Audio: aac" in info and "Video: h264" in info


def test_mp4_pipeline_keeps_frame_order_and_cancels_cleanly(tmp_path):
    """Posing, drawing and encoding overlap: every frame still lands in its place (each matches
    the frame drawn alone), and a cancel midway writes nothing and stops the worker threads."""
    import threading

    import imageio.v3 as iio

    from core.animation.export import ClipExportCancelled, ClipRenderer, export_clip_mp4

    n = 12
    w = np.zeros((n, 53), np.float32)
    w[:, INDEX["jawOpen"]] = np.linspace(0, 1, n)            # a different frame every step
    clip = Clip.from_streams(w, fps=12)
    r = ClipRenderer(None, size=128, resolution=48)
    try:
        export_clip_mp4(clip, tmp_path / "a.mp4", renderer=r, crf=12)
        frames = iio.imread(tmp_path / "a.mp4").astype(int)
        alone = [r.render(row).astype(int) for row in clip.evaluated()]
        for i in range(n):
            errs = [np.abs(frames[i] - a).mean() for a in alone]
            assert int(np.argmin(errs)) == i and errs[i] < 3.0
        before = threading.active_count()
        calls = iter(range(100))
        with pytest.raises(ClipExportCancelled):
            export_clip_mp4(clip, tmp_path / "b.mp4", renderer=r, cancelled=lambda: next(calls) >= 5)
        assert not (tmp_path / "b.mp4").exists()
        assert threading.active_count() <= before
    finally:
        r.release()


@pytest.mark.shared
def test_track_video_into_clip(tmp_path):
    video = SHARED / "speaker_b.mp4"
    if not video.exists():
        pytest.skip(f"{video} missing")
    from core.animation.track import track_video
    clip, stats = track_video(video, max_seconds=2.0)
    assert stats.face_share == 1.0 and 40 <= clip.frames <= 60
    assert clip.audio is not None and clip.audio.duration == pytest.approx(2.0, abs=0.1)
    assert np.abs(clip.audio.samples).max() > 0.05                          # speech, not silence
    assert clip.weights()[:, INDEX["jawOpen"]].std() > 0.02                  # a speaking mouth
    assert np.abs(np.median(clip.rotation(), 0)).max() < 1.0                 # relative to the median
