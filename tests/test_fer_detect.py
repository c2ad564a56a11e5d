"""One-stage face + expression detector: the 2D selective scan against its reference, the VSS and
CSP blocks, target assignment, VOC AP, the shipped detectors on real clips, eval-detect and
the fer command's one-stage engine, and clear messages for bad files."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from core.fer.detect_eval import average_precision, score_detections, voc_ap
from core.fer.detector import (DEFAULT_CSP, DEFAULT_VSS, DetectorError, FaceDetNet, OneStageDetector, assign,
                               decode_boxes, flatten_outputs, load_detector, save_detector)
from core.fer.ss2d import SS2D, CSPBlock, VSSBlock, selective_scan, selective_scan_reference, ss2d_reference
from core.paths import REPO_ROOT, SHARED_DIR

MEDIA = SHARED_DIR / "media"
CLIPS = sorted(MEDIA.glob("*.mp4")) if MEDIA.is_dir() else []
needs_weights = pytest.mark.skipif(not DEFAULT_VSS.exists(), reason="detector weights not trained yet")


def _scan_inputs(b=2, g=4, d=5, n=6, L=45, dtype=torch.float64, strong=False, seed=0):
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(b, g, d, L, generator=gen, dtype=dtype)
    delta = torch.rand(b, g, d, L, generator=gen, dtype=dtype) * (4.0 if strong else 0.5)
    A = -torch.rand(g, d, generator=gen, dtype=dtype) * (12.0 if strong else 2.0) - 0.01
    Bm, Cm = (torch.randn(b, g, n, L, generator=gen, dtype=dtype) for _ in range(2))
    D = torch.randn(g, d, generator=gen, dtype=dtype)
    return u, delta, A, Bm, Cm, D


@pytest.mark.parametrize("chunk", [1, 4, 16, 64])
@pytest.mark.parametrize("strong", [False, True])
def test_chunked_scan_matches_step_by_step_recurrence(chunk, strong):
    args = _scan_inputs(strong=strong)
    ref = selective_scan_reference(*args)
    assert torch.allclose(selective_scan(*args, chunk=chunk), ref, atol=1e-10, rtol=1e-9)
    # float32, as trained and run: decays down to the floor keep every factor finite
    args32 = [a.float() for a in args]
    out = selective_scan(*args32, chunk=16)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, ref.float(), atol=2e-4, rtol=1e-3)


def test_chunked_scan_gradients_match_reference():
    args = [a.clone().requires_grad_(True) for a in _scan_inputs(L=23)]
    w = torch.randn(2, 4, 5, 23, dtype=torch.float64)
    (selective_scan(*args, chunk=8) * w).sum().backward()
    g1 = [a.grad.clone() for a in args]
    for a in args:
        a.grad = None
    (selective_scan_reference(*args) * w).sum().backward()
    for a, b in zip(g1, (a.grad for a in args)):
        assert torch.allclose(a, b, atol=1e-9)


def test_ss2d_matches_explicit_four_direction_scan():
    torch.manual_seed(0)
    m = SS2D(12, d_state=4).double()
    x = torch.randn(2, 5, 7, 12, dtype=torch.float64)   # not square, not a multiple of the chunk
    assert torch.allclose(m(x), ss2d_reference(m, x), atol=1e-10)


def test_ss2d_sees_context_from_every_direction():
    """A change at one pixel reaches pixels before it in row order too (the reversed scans)."""
    torch.manual_seed(1)
    m = SS2D(8).eval()
    x = torch.randn(1, 6, 6, 8)
    y0 = m(x)
    x2 = x.clone()
    x2[0, 5, 5] += 3.0
    changed = (m(x2) - y0).abs().sum(-1)[0]
    assert changed[0, 0] > 1e-6 and changed[0, 5] > 1e-6 and changed[5, 0] > 1e-6


def test_blocks_keep_resolution_and_set_channels():
    x = torch.randn(2, 32, 9, 13)
    assert VSSBlock(32, 24)(x).shape == (2, 24, 9, 13)
    assert CSPBlock(32, 24)(x).shape == (2, 24, 9, 13)


def test_assignment_and_decoding_agree():
    net = FaceDetNet("csp").eval()
    with torch.no_grad():
        pred, grid = flatten_outputs(net(torch.rand(1, 1, 192, 256)))
    boxes = [np.array([[3, 20, 30, 50, 66], [5, 100, 40, 220, 170]], np.float32)]
    owner, faces = assign(boxes, grid)
    assert set(owner[0][owner[0] >= 0].tolist()) == {0, 1}
    for k, (_, x1, y1, x2, y2) in enumerate(faces.numpy()):
        cells = grid[owner[0] == k]
        # the small face on stride 8, the large one on stride 32; positives near the centre
        assert set(cells[:, 2].tolist()) == ({8.0} if k == 0 else {32.0})
        cx = (cells[:, 0] + 0.5) * cells[:, 2]
        assert ((cx > x1) & (cx < x2)).all()
    # a prediction of zeros is a box one stride wide centred on its cell
    z = decode_boxes(torch.zeros(1, len(grid), 4), grid)[0]
    assert torch.allclose(z[0], torch.tensor([0.0, 0.0, 8.0, 8.0]))


def test_soft_class_targets_match_cross_entropy_and_follow_the_teacher():
    """One-hot soft targets give the plain loss; a face without expression (-1) adds no class term."""
    from core.fer.detector import detection_loss
    torch.manual_seed(0)
    net = FaceDetNet("csp")
    outs = net(torch.rand(2, 1, 192, 256))
    boxes = [np.array([[2, 10, 10, 60, 70], [-1, 100, 50, 200, 170]], np.float32),
             np.array([[5, 30, 30, 80, 85]], np.float32)]
    eye = np.eye(7, dtype=np.float32)
    hard, info = detection_loss(outs, boxes)
    soft, info_s = detection_loss(outs, boxes, [np.stack([eye[2], np.zeros(7, np.float32)]), eye[[5]]])
    assert abs(info["cls"] - info_s["cls"]) < 1e-5 and abs(hard.item() - soft.item()) < 1e-4
    other, info_o = detection_loss(outs, boxes, [np.stack([eye[0], eye[3]]), eye[[1]]], cls_weight=2.0)
    assert abs(info_o["cls"] - info["cls"]) > 1e-3      # the target changed the class term
    assert abs(other.item() - (hard.item() + info_o["cls"] * 2 - info["cls"])) < 1e-3


def test_mosaic_scenes_hold_one_labelled_face_per_cell():
    from core.fer.detdata import FacePool, mosaic
    rng = np.random.default_rng(0)
    pool = FacePool("fer2013")
    for c in range(7):   # a bright disc on grey: the pasted face is where its box says
        patch = np.full((48, 48), 60, np.uint8)
        cv2.circle(patch, (24, 26), 16, 250, -1)
        pool.patches.append(patch)
        pool.boxes.append((5.0, 5.0, 38.0, 43.0))
        pool.labels.append(c)
        pool.indices.append(c)
    bgs = [np.full((300, 400), 60, np.uint8)]
    for _ in range(3):
        picked: list = []
        img, boxes = mosaic(rng, bgs, [(pool, 1.0)], picked)
        assert img.shape == (480, 640) and img.dtype == np.uint8
        assert len(boxes) in (4, 6, 9, 12, 16) and len(picked) == len(boxes)
        for (c, x1, y1, x2, y2), (pl, i) in zip(boxes, picked):
            assert pl.labels[i] == c and 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480
            cx, cy = int((x1 + x2) / 2), int((y1 + y2) / 2)
            assert img[cy, cx] > 150 > img[int(y1) + 1, int(x1) + 1]


def test_voc_ap_definition():
    gts = [np.array([[0, 0, 10, 10]], float), np.array([[0, 0, 10, 10]], float)]
    perfect = [(0, 0.9, np.array([0, 0, 10, 10.])), (1, 0.8, np.array([0, 0, 10, 10.]))]
    assert average_precision(perfect, gts) == pytest.approx(1.0)
    # a false positive ranked first: precision 1/2 at recall 1/2, 2/3 at recall 1
    fp = [(0, 0.95, np.array([50, 50, 60, 60.]))] + perfect
    assert average_precision(fp, gts) == pytest.approx(0.5 * 2 / 3 + 0.5 * 2 / 3)
    # a duplicate detection of an already claimed face is a false positive
    dup = perfect + [(0, 0.7, np.array([0, 0, 10, 10.]))]
    assert average_precision(dup, gts) == pytest.approx(1.0)
    assert voc_ap(np.array([0.5, 1.0]), np.array([1.0, 0.5])) == pytest.approx(0.75)
    # class scores: the right class ranks first, so per-class AP is 1 and mAP 1
    probs = np.eye(7)[3]
    res = score_detections([[(0, 0, 10, 10, 0.9, probs)]], [np.array([[3, 0, 0, 10, 10]], np.float32)])
    assert res["AP50"]["happy"] == 1.0 and res["face_AP50"] == 1.0 and res["expression_accuracy_found"] == 1.0


def test_detector_file_round_trip_and_damage(tmp_path):
    net = FaceDetNet("vss").eval()
    p = tmp_path / "d.pt"
    save_detector(net, p, {"note": "test"})
    again, meta = load_detector(p)
    x = torch.rand(1, 1, 192, 256)
    with torch.no_grad():
        a, b = net(x), again(x)
    assert meta["note"] == "test" and all(torch.allclose(u, v, atol=5e-2) for u, v in zip(a, b))
    bad = tmp_path / "bad.pt"
    for content in (b"", b"not a model" * 50, p.read_bytes()[:300]):
        bad.write_bytes(content)
        with pytest.raises(DetectorError):
            load_detector(bad)
    torch.save({"format": "something else"}, bad)
    with pytest.raises(DetectorError, match="not a Likeness face detector"):
        load_detector(bad)
    with pytest.raises(DetectorError, match="not found"):
        OneStageDetector(tmp_path / "missing.pt")


def _cli(*args):
    return subprocess.run([sys.executable, str(REPO_ROOT / "main.py"), *map(str, args)], capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=900)


def _frame(clip, t: float = 0.4):
    cap = cv2.VideoCapture(str(clip))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.set(cv2.CAP_PROP_POS_FRAMES, int(max(0, n * t)))
    ok, frame = cap.read()
    cap.release()
    return frame if ok else None


@needs_weights
@pytest.mark.skipif(not CLIPS, reason="shared clips missing")
@pytest.mark.parametrize("engine", ["vss", "csp"])
def test_shipped_detector_finds_the_face_in_each_shared_clip(engine):
    """One frame of every real clip (one person each): the detector's best box must cover the
    face MediaPipe finds (IoU >= 0.4, boxes drawn to different conventions)."""
    from core.tracking import FaceTracker
    det = OneStageDetector(DEFAULT_VSS if engine == "vss" else DEFAULT_CSP)
    misses = []
    with FaceTracker(num_faces=1) as tracker:
        for clip in CLIPS:
            frame = _frame(clip)
            faces = tracker.detect(frame)
            if not faces:
                continue
            x, y, w, h = faces[0].box
            found = det.detect(frame)
            if not found:
                misses.append(f"{clip.name}: nothing")
                continue
            bx, by, bw, bh = found[0].box
            ix = max(0, min(x + w, bx + bw) - max(x, bx)) * max(0, min(y + h, by + bh) - max(y, by))
            iou = ix / (w * h + bw * bh - ix)
            if iou < 0.4:
                misses.append(f"{clip.name}: IoU {iou:.2f}")
    assert not misses, misses


@needs_weights
def test_eval_detect_and_one_stage_fer_cli(tmp_path):
    from core.fer.detdata import FacePool, write_detection_set
    rng = np.random.default_rng(0)
    bgs = [cv2.GaussianBlur(rng.integers(0, 255, (300, 400), dtype=np.uint8), (0, 0), 8) for _ in range(3)]
    pool = FacePool("fixture")
    yy, xx = np.mgrid[:48, :48]
    for c in range(7):   # drawn faces: an ellipse with eyes and a mouth (enough to exercise the scoring)
        img = np.full((48, 48), 90, np.uint8)
        cv2.ellipse(img, (24, 26), (18, 22), 0, 0, 360, 170, -1)
        cv2.circle(img, (17, 20), 3, 40, -1)
        cv2.circle(img, (31, 20), 3, 40, -1)
        cv2.ellipse(img, (24, 36), (7, 2 + c // 2), 0, 0, 360, 60, -1)
        pool.patches.append(img)
        pool.boxes.append((5.0, 5.0, 38.0, 43.0))
        pool.labels.append(c)
    set_dir = tmp_path / "set"
    write_detection_set(set_dir, 6, 0, bgs, [(pool, 1.0)])
    r = _cli("eval-detect", "--set", set_dir, "--latency-frames", "5")
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(res["systems"]) == {"one_stage_vss", "one_stage_csp", "two_stage"}
    for s in res["systems"].values():
        assert 0 <= s["mAP50"] <= 1 and len(s["AP50"]) == 7 and s["parameters"] > 0
        assert s["latency_640x480"]["ms_median"] > 0
    # errors: one line, exit 2
    for args, words in ((["--set", tmp_path / "nope"], "not found"),
                        (["--set", tmp_path], "not a detection set"),
                        (["--set", set_dir, "--vss", tmp_path / "x.pt"], "not found")):
        r = _cli("eval-detect", *args)
        assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x80\x02garbage" * 100)
    r = _cli("eval-detect", "--set", set_dir, "--csp", garbage)
    assert r.returncode == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr


@needs_weights
@pytest.mark.skipif(not CLIPS, reason="shared clips missing")
def test_fer_one_stage_engine_writes_rows_and_annotations(tmp_path):
    frame = _frame(MEDIA / "speaker_a.mp4")
    img = tmp_path / "face.jpg"
    cv2.imwrite(str(img), frame)
    out, csv_path = tmp_path / "o.png", tmp_path / "r.csv"
    r = _cli("fer", img, "--engine", "one-stage", "--out", out, "--csv", csv_path)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = csv_path.read_text().strip().splitlines()
    assert len(rows) >= 2 and rows[1].split(",")[7] in ("angry", "disgust", "fear", "happy", "sad", "surprise",
                                                        "neutral")
    assert np.abs(cv2.imread(str(out)).astype(int) - frame).mean() > 0.5
    r = _cli("fer", img, "--engine", "one-stage", "--heatmap", "--out", out)
    assert r.returncode == 2 and "two-stage" in r.stderr
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"nonsense" * 20)
    r = _cli("fer", img, "--engine", "one-stage", "--detector", bad)
    assert r.returncode == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr
