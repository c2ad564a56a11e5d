"""Face tracking on the shared clips: coverage, stable ids, blendshape mapping and pose signs."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.expressions import EXPRESSION_NAMES
from core.paths import SHARED_DIR
from core.tracking import (MEDIAPIPE_BLENDSHAPES, FaceIdAssigner, FaceTracker, TrackerError,
                           arkit_to_ours, to_expression_weights)
from core.video import VideoFileSource

MEDIA = SHARED_DIR / "media"
CLIPS = ["speaker_a.mp4", "speaker_b.mp4", "expressions_a.mp4"]
needs_media = pytest.mark.skipif(not (MEDIA / CLIPS[0]).exists(), reason=f"shared clips missing under {MEDIA}")


@pytest.fixture(scope="module")
def tracker():
    with FaceTracker() as t:
        yield t


def test_mapping_covers_all_53_with_subject_sides():
    assert len(MEDIAPIPE_BLENDSHAPES) == 52
    assert arkit_to_ours("eyeBlinkLeft") == ("eyeBlink_L",)
    assert arkit_to_ours("mouthSmileRight") == ("mouthSmile_R",)
    assert arkit_to_ours("browInnerUp") == ("browInnerUp_L", "browInnerUp_R")
    assert arkit_to_ours("cheekPuff") == ("cheekPuff_L", "cheekPuff_R")
    assert arkit_to_ours("jawLeft") == ("jawLeft",) and arkit_to_ours("mouthRight") == ("mouthRight",)
    scores = np.linspace(0, 1, 52, dtype=np.float32)
    w = to_expression_weights(scores)
    assert w.shape == (53,)
    for i, name in enumerate(MEDIAPIPE_BLENDSHAPES[1:], start=1):
        for ours in arkit_to_ours(name):
            assert w[EXPRESSION_NAMES.index(ours)] == pytest.approx(scores[i])
    assert to_expression_weights({"jawOpen": 0.7})[EXPRESSION_NAMES.index("jawOpen")] == pytest.approx(0.7)


def test_ids_stay_with_their_faces():
    ids = FaceIdAssigner()
    a, b = (10, 10, 50, 50), (200, 10, 50, 50)
    assert ids.assign([a, b]) == [0, 1]
    assert ids.assign([(205, 12, 50, 50), (12, 11, 50, 50)]) == [1, 0]  # order swapped, ids follow
    assert ids.assign([(14, 12, 50, 50)]) == [0]                        # face 1 missed a frame
    assert ids.assign([(16, 12, 50, 50), (208, 12, 50, 50)]) == [0, 1]  # ... and keeps its id
    assert ids.assign([(400, 300, 40, 40)]) == [2]                      # a newcomer gets a new id


def test_bad_model_path_is_clear(tmp_path):
    with pytest.raises(TrackerError, match="not found"):
        FaceTracker(tmp_path / "missing.task")


@needs_media
@pytest.mark.parametrize("clip", CLIPS)
def test_face_tracked_in_95_percent_of_frames(tracker, clip):
    tracker.reset()
    step = 3  # every third frame keeps the test fast; VIDEO mode still sees increasing time
    seen = total = 0
    ids = set()
    with VideoFileSource(MEDIA / clip) as src:
        for fr in src:
            if fr.index % step:
                continue
            faces = tracker.track(fr.image, fr.timestamp_s)
            total += 1
            seen += bool(faces)
            ids.update(f.face_id for f in faces)
            if faces:
                f = faces[0]
                assert f.landmarks.shape == (478, 3) and f.weights.shape == (53,)
                assert 0 <= f.box[0] < fr.image.shape[1] and f.box[2] > 20
    assert total > 30 and seen / total >= 0.95, f"{clip}: face in {seen}/{total} frames"
    assert ids == {0}, f"one person should keep one id, got {ids}"


@needs_media
def test_left_is_the_subjects_left(tracker):
    """eyeBlinkLeft - eyeBlinkRight must rise when the eye on the image's right (subject's left,
    non-mirrored video) is the more closed one."""
    tracker.reset()
    asym, aperture = [], []
    with VideoFileSource(MEDIA / "expressions_a.mp4") as src:
        for fr in src:
            if fr.index % 3:
                continue
            faces = tracker.track(fr.image, fr.timestamp_s)
            if not faces:
                continue
            f, L = faces[0], faces[0].landmarks
            eyes = sorted([(L[159, 0], np.linalg.norm(L[159, :2] - L[145, :2])),
                           (L[386, 0], np.linalg.norm(L[386, :2] - L[374, :2]))])
            aperture.append((eyes[0][1] - eyes[1][1]) / f.box[2])  # image-left minus image-right opening
            asym.append(f.weights[EXPRESSION_NAMES.index("eyeBlink_L")] - f.weights[EXPRESSION_NAMES.index("eyeBlink_R")])
    assert np.corrcoef(asym, aperture)[0, 1] > 0.2  # measured 0.45


@needs_media
def test_pose_sign_flips_with_mirror_and_multiple_faces(tracker):
    with VideoFileSource(MEDIA / "expressions_a.mp4") as src:
        frame = [f for _, f in zip(range(200), src)][-1].image
    face = tracker.detect(frame)[0]
    mirrored = tracker.detect(cv2.flip(frame, 1))[0]
    assert np.sign(face.yaw) == -np.sign(mirrored.yaw) or abs(face.yaw) < 2
    assert face.roll == pytest.approx(-mirrored.roll, abs=3.0)
    # two people side by side: two faces, numbered left to right in image mode
    pair = np.hstack([frame, cv2.flip(frame, 1)])
    faces = tracker.detect(pair)
    assert len(faces) == 2 and [f.face_id for f in faces] == [0, 1]
    assert faces[0].box[0] < faces[1].box[0]


def test_no_face_image_gives_no_faces(tracker):
    blank = np.full((240, 320, 3), 128, np.uint8)
    assert tracker.detect(blank) == []


def test_puppet_calibration_and_smoothing():
    from core.tracking.puppet import Puppet

    p = Puppet(smoothing=0.0)
    assert not p.calibrate()                     # nothing tracked yet
    assert p.weights is None and p.pose is None
    rest = np.full(53, 0.2, np.float32)
    p.update(rest * 6, np.array([10.0, -5.0, 2.0]))
    assert np.allclose(p.weights, 1.0)           # uncalibrated: clipped to [0, 1]
    assert np.allclose(p.pose, [10.0, -5.0, 2.0])
    p.update(rest, np.array([10.0, -5.0, 2.0]))
    assert p.calibrate()
    assert np.allclose(p.weights, 0.0) and np.allclose(p.pose, 0.0)
    p.update(np.ones(53), np.array([25.0, -5.0, 2.0]))
    assert np.allclose(p.weights, 1.0)           # full activation stays reachable after calibration
    assert np.allclose(p.pose, [15.0, 0.0, 0.0])  # relative to the resting pose
    p.update(rest + 0.4, None)
    assert np.allclose(p.weights, 0.5)           # (0.6 - 0.2) / (1 - 0.2)

    s = Puppet(smoothing=0.75)
    s.update(np.zeros(53), np.zeros(3))
    s.update(np.ones(53), np.array([40.0, 0.0, 0.0]))
    assert np.allclose(s.weights, 0.25) and np.allclose(s.pose, [10.0, 0.0, 0.0])
    s.reset()
    s.update(np.ones(53))
    assert np.allclose(s.weights, 1.0)           # a new stream starts from the raw value


def test_head_pose_turns_points_about_the_pivot():
    from core.tracking.pose import euler_from_matrix
    from core.tracking.puppet import HEAD_PIVOT, head_matrix, posed_head

    pts = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32) * 5
    pose = np.array([30.0, -10.0, 5.0], np.float32)
    m = head_matrix(pose)
    assert np.allclose(posed_head(pts, pose), pts @ m[:3, :3].T + m[:3, 3], atol=1e-4)
    assert np.allclose(posed_head(HEAD_PIVOT[None], pose), HEAD_PIVOT, atol=1e-5)
    assert np.allclose(euler_from_matrix(m), pose, atol=1e-4)
    assert posed_head(pts, np.zeros(3)) is pts   # no pose: no copy
