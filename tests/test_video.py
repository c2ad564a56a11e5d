"""Video sources: files, images, folders, corrupt input and a camera that fails and returns."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.paths import SHARED_DIR
from core.video import (CameraSource, ImageSource, SourceState, VideoFileSource, VideoSourceError,
                        open_source)

CLIP = SHARED_DIR / "media" / "speaker_a.mp4"
needs_media = pytest.mark.skipif(not CLIP.exists(), reason=f"shared clip missing: {CLIP}")


def _write_video(path, n=12, size=(64, 48), fps=10.0):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(n):
        w.write(np.full((size[1], size[0], 3), i * 20, np.uint8))
    w.release()


def test_video_file_frames_and_timestamps(tmp_path):
    path = tmp_path / "ramp.avi"
    _write_video(path)
    with open_source(path) as src:
        assert isinstance(src, VideoFileSource) and src.status.state == SourceState.LIVE
        frames = list(src)
    assert [f.index for f in frames] == list(range(12))
    assert frames[3].timestamp_s == pytest.approx(0.3)
    assert frames[0].image.shape == (48, 64, 3) and frames[0].image.dtype == np.uint8
    assert src.status.state == SourceState.CLOSED


@needs_media
def test_shared_clip_reads_at_its_rate():
    with VideoFileSource(CLIP) as src:
        assert src.fps == pytest.approx(25.0)
        frames = [f for _, f in zip(range(30), src)]
    assert frames[-1].timestamp_s == pytest.approx(29 / 25)


def test_corrupt_video_gives_clear_message(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    with pytest.raises(VideoSourceError, match="cannot decode video .*broken.mp4.*corrupt"):
        open_source(bad)
    with pytest.raises(FileNotFoundError, match="not found"):
        open_source(tmp_path / "nope.mp4")


def test_image_and_folder_sources(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), np.full((20, 30, 3), i, np.uint8))
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    src = open_source(tmp_path)
    frames = list(src)
    assert isinstance(src, ImageSource) and len(frames) == 3  # junk skipped, not fatal
    assert src.skipped == ["junk.jpg: unreadable"] and "skipped 1" in src.status.message
    with pytest.raises(VideoSourceError, match="cannot read image"):
        open_source(tmp_path / "junk.jpg")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoSourceError, match="no images"):
        open_source(tmp_path / "empty")


class FlakyCamera:
    """A cv2.VideoCapture stand-in: closed while `plugged` is False, dies after `frames` reads."""

    def __init__(self, world):
        self.world, self.opened = world, world["plugged"]

    def isOpened(self):
        return self.opened

    def set(self, *a):
        return True

    def get(self, prop):
        return 30.0

    def read(self):
        if not (self.opened and self.world["plugged"]):
            return False, None
        self.world["reads"] += 1
        if self.world["reads"] == self.world["unplug_at"]:
            self.world["plugged"] = False  # unplugged mid-session
            return False, None
        return True, np.zeros((4, 4, 3), np.uint8)

    def release(self):
        self.opened = False


def test_camera_missing_then_unplugged_then_back():
    world = {"plugged": False, "reads": 0, "unplug_at": 4}
    sleeps = []

    def sleep(s):
        sleeps.append(s)
        if len(sleeps) == 3:
            world["plugged"] = True  # arrives after three retries ...
        if len(sleeps) == 6:
            world["plugged"] = True  # ... and comes back after being unplugged

    cam = CameraSource(1, capture_factory=lambda i: FlakyCamera(world), sleep=sleep, backoff_s=(0.1, 0.4))
    statuses, frames = [], []
    for f in cam:
        frames.append(f)
        statuses.append(cam.status.state)
        if len(frames) == 6:
            break
    assert len(frames) == 6 and [f.index for f in frames] == list(range(6))
    assert sleeps[:4] == [0.1, 0.2, 0.4, 0.1]  # exponential backoff, capped, reset after a frame
    assert all(s == SourceState.LIVE for s in statuses)
    cam.close()
    assert cam.status.state == SourceState.CLOSED


def test_camera_that_never_appears_fails_clearly():
    cam = CameraSource(7, capture_factory=lambda i: FlakyCamera({"plugged": False}),
                       sleep=lambda s: None, give_up_after_s=0.0)
    assert list(cam) == []
    assert cam.status.state == SourceState.FAILED
    assert "camera 7 is not available" in cam.status.message and "gave up" in cam.status.message


def test_camera_driver_exception_is_a_status_not_a_crash():
    def boom(i):
        raise RuntimeError("device busy")
    cam = CameraSource(0, capture_factory=boom, sleep=lambda s: None, give_up_after_s=0.0)
    assert list(cam) == [] and "device busy" in cam.status.message
