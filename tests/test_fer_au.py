"""Action-unit explanations (core.fer.au): the map lies where the codebook's AUs act on a real
tracked face, the active AUs come from the tracked blendshapes, and the overlay draws it."""
from __future__ import annotations

import numpy as np
import pytest

from core.expressions import PRESETS, weights_from_dict
from core.fer.au import (CODEBOOK, MP_TO_68, active_aus, au_heatmap, au_intensities, cam_cos,
                         expression_heatmap, landmarks68_from_mediapipe)

SIZE = 384


@pytest.fixture(scope="module")
def tracked():
    """The default avatar rendered smiling and surprised, tracked by MediaPipe."""
    from core.render import OrbitCamera, Renderer, headless_context
    from core.render.scene import load_scene, show_scene
    from core.tracking import FaceTracker

    out = {}
    ctx = headless_context()
    with FaceTracker(num_faces=1) as tracker:
        for name, preset in (("happy", "happy"), ("surprise", "surprised")):
            r = Renderer(ctx)
            scene = load_scene(expression=weights_from_dict(PRESETS[preset]), resolution=96)
            show_scene(r, scene)
            cam = OrbitCamera(yaw=0, pitch=0).frame(*r.bounds("mesh"), margin=0.75)
            rgb = r.render_image(SIZE, SIZE, cam, view="textured")[..., :3]
            r.release()
            bgr = np.ascontiguousarray(rgb[..., ::-1])
            faces = tracker.detect(bgr)
            assert faces, f"MediaPipe found no face in the {name} render"
            out[name] = (bgr, faces[0])
    return out


def _heat_at(heat: np.ndarray, pts: np.ndarray) -> float:
    return float(np.mean([heat[int(round(y)), int(round(x))] for x, y in pts]))


def test_smile_marks_the_mouth_corners_and_surprise_the_brows(tracked):
    from core.tracking import MEDIAPIPE_BLENDSHAPES
    for name, here, not_here in (("happy", [48, 54], [19, 24]), ("surprise", [19, 24], [48, 54])):
        bgr, face = tracked[name]
        lm = landmarks68_from_mediapipe(face.landmarks)
        inten = au_intensities(dict(zip(MEDIAPIPE_BLENDSHAPES, map(float, face.blendshapes))))
        heat = expression_heatmap(lm, name, bgr.shape[:2], inten)
        on, off = _heat_at(heat, lm[here]), _heat_at(heat, lm[not_here])
        assert on > 0.4 and off < 0.1, (name, on, off)
        named = [au for au, _, _ in active_aus(inten)]
        assert (12 in named) if name == "happy" else ({1, 2} <= set(named)), (name, named)


def test_overlay_draws_the_map_and_names_the_aus(tracked):
    from core.fer.overlay import au_map, draw_results
    from core.fer.pipeline import FaceResult

    bgr, face = tracked["happy"]
    probs = np.eye(7, dtype=np.float32)[3]          # "happy"
    res = FaceResult(face, np.zeros((48, 48), np.uint8), np.eye(2, 3), probs, 0.0)
    plain = draw_results(bgr, [res], bars=False)
    with_aus = draw_results(bgr, [res], bars=False, aus=True)
    heat, active = au_map(res, bgr.shape[:2])
    lm = landmarks68_from_mediapipe(face.landmarks)
    x, y = lm[48].round().astype(int)
    assert np.abs(with_aus[y - 2:y + 3, x - 2:x + 3].astype(int) - plain[y - 2:y + 3, x - 2:x + 3]).mean() > 10
    fx, fy = lm[27].round().astype(int)            # the nose bridge: no smile AU there
    assert np.abs(with_aus[fy, fx].astype(int) - plain[fy, fx]).max() <= 2
    assert active and active[0][1] and heat.max() > 0.4


def test_maps_follow_the_landmarks_and_cam_cos():
    # a synthetic frontal layout: the mean of MediaPipe-free iBUG-like points, shifted
    rng = np.random.default_rng(0)
    lm = np.zeros((68, 2), np.float32)
    lm[36:42], lm[42:48] = (40, 50), (80, 50)       # eyes
    lm[17:22], lm[22:27] = (40, 38), (80, 38)       # brows
    lm[27:36] = (60, 65)
    lm[48], lm[54] = (45, 90), (75, 90)             # mouth corners
    lm[49:54], lm[55:68] = (60, 86), (60, 94)
    lm[0:17] = (60, 115)
    heat = au_heatmap(lm, [12], (128, 128))
    assert heat[90, 45] > 0.8 and heat[90, 75] > 0.8 and heat[38, 40] < 0.05
    moved = au_heatmap(lm + (10, 5), [12], (128, 128))
    assert moved[95, 55] > 0.8 and moved[90, 45] < heat[90, 45]
    assert expression_heatmap(lm, "neutral", (64, 64)).max() == 0
    weak = au_heatmap(lm, {12: 0.3}, (128, 128))
    assert weak.max() == pytest.approx(0.3, abs=0.01)
    assert cam_cos(heat, heat) == pytest.approx(1.0)
    assert cam_cos(heat, au_heatmap(lm, [1, 2], (128, 128))) < 0.1
    assert cam_cos(rng.random((8, 8)), np.zeros((8, 8))) == 0.0
    assert set(CODEBOOK) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    assert len(MP_TO_68) == 68 and max(MP_TO_68) < 468
    with pytest.raises(ValueError):
        landmarks68_from_mediapipe(np.zeros((10, 2)))


def test_alignment_loss_and_cam_cos_on_a_small_network():
    import torch

    from core.fer.au_align import alignment_loss, attention, au_maps, batch_gradcam, cam_cos_per_class
    from core.fer.model import FER_CLASSES, FerNet

    lm = np.zeros((68, 2), np.float32)
    lm[36:42], lm[42:48], lm[17:27] = (16, 18), (32, 18), (24, 12)
    lm[48], lm[54], lm[27:36], lm[49:68], lm[0:17] = (17, 34), (31, 34), (24, 26), (24, 35), (24, 44)
    labels = np.array([FER_CLASSES.index("happy"), FER_CLASSES.index("neutral"), FER_CLASSES.index("surprise")])
    maps = au_maps(np.stack([lm] * 3), labels, np.array([True, True, False]))
    assert maps[0].max() > 200 and maps[1].max() == 0 and maps[2].max() == 0   # neutral / not found: none
    h = torch.from_numpy(maps[:1]).float() / 255
    pooled = torch.nn.functional.adaptive_avg_pool2d(h[:, None], (6, 6))[:, 0]
    assert float(alignment_loss(pooled, h)) < 1e-5                              # same map: no loss
    assert float(alignment_loss(torch.ones(1, 6, 6), h)) > 0.1
    assert float(alignment_loss(torch.ones(1, 6, 6), torch.zeros(1, 48, 48))) == 0.0   # no map, no term
    torch.manual_seed(0)
    net = FerNet(width=4).eval()
    x = np.random.default_rng(0).integers(0, 255, (3, 48, 48), dtype=np.uint8)
    logits, att = attention(net, torch.randn(3, 1, 48, 48))
    assert logits.shape == (3, 7) and att.shape == (3, 6, 6)
    cams = batch_gradcam(net, x, labels)
    assert cams.shape == (3, 48, 48) and cams.min() >= 0
    res = cam_cos_per_class([net, net], x, labels, maps)
    assert set(res) == {"happy", "mean"} and -1 <= res["mean"] <= 1
