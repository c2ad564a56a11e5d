"""Appearance (texture) space: the shipped model decodes, encodes, fills unseen skin; texture codes
round-trip through project files; damaged model files give a clear message; the panel edits."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from core.appearance import AppearanceModel, AppearanceModelError, avatar_texture
from core.appearance.model import to_srgb


@pytest.fixture(scope="module")
def model() -> AppearanceModel:
    return AppearanceModel.load()


def _face_region(model: AppearanceModel) -> np.ndarray:
    """Texels of the face tile's centre (left half of the layout, cheeks/nose/forehead)."""
    s = model.size
    m = np.zeros((s, s), bool)
    m[int(0.2 * s):int(0.6 * s), int(0.12 * s):int(0.38 * s)] = True
    return m & model.covered


def test_shipped_model_decodes_skin(model):
    assert model.num_components >= 8 and model.meta["samples"] >= 100
    tex = model.decode(None)
    assert tex.shape == (1024, 1024, 3) and tex.dtype == np.uint8
    small = model.decode(None, model.size)
    face = small[_face_region(model)].astype(float)
    r, g, b = np.median(face, 0)
    assert r > g > b and 90 < r < 250            # skin: red over green over blue, not black/white
    # codes change the texture, the prior's spread is real: two random faces differ visibly
    rng = np.random.default_rng(1)
    a, c = (model.decode(model.sample(rng), model.size) for _ in range(2))
    assert np.abs(a.astype(int) - c.astype(int))[_face_region(model)].mean() > 4


def test_encode_inverts_decode_and_predicts_the_unseen_half(model):
    rng = np.random.default_rng(2)
    code = model.sample(rng, temperature=0.8)
    lin = model.decode_linear(code)
    full = np.ones(lin.shape[:2], np.float32)
    assert np.abs(model.encode(lin, full) - code).max() < 0.15
    # seen: the left half of the face tile only; the code still predicts the right half
    s = model.size
    half = np.zeros_like(full)
    half[:, : int(0.25 * s)] = 1.0
    noisy = np.clip(lin + rng.normal(0, 0.02, lin.shape).astype(np.float32), 0, 1)
    pred = model.decode_linear(model.encode(noisy, half))
    right = _face_region(model) & (np.arange(s)[None, :] >= int(0.25 * s))
    err_code = np.abs(to_srgb(pred) - to_srgb(lin))[right].mean()
    err_mean = np.abs(to_srgb(model.decode_linear(None)) - to_srgb(lin))[right].mean()
    assert err_code < 0.6 * err_mean


def test_avatar_texture_prefers_the_explicit_texture(model):
    from core.avatar import Avatar
    a = Avatar(np.zeros(4, np.float32))
    assert np.array_equal(avatar_texture(a), model.decode(None))
    code = model.sample(np.random.default_rng(3))
    a.set_appearance(code)
    assert np.array_equal(avatar_texture(a), model.decode(code))
    painted = np.full((64, 64, 3), 7, np.uint8)
    a.set_texture(painted)
    assert avatar_texture(a) is a.texture


def test_texture_code_round_trips_and_old_projects_open(tmp_path, model):
    from core.avatar import Avatar
    from core.project import load_project, save_project
    code = model.sample(np.random.default_rng(4))
    a = Avatar(np.zeros(100, np.float32), appearance=code, name="coded")
    a.set_hair(style="long", colour=(0.6, 0.6, 0.6))
    a.set_eyes(iris_colour=(0.2, 0.4, 0.7), pupil_size=0.3)
    save_project(a, tmp_path / "a.likeness")
    b = load_project(tmp_path / "a.likeness")
    assert np.array_equal(b.appearance, code)
    assert b.hair == a.hair and b.eyes == a.eyes
    # a format-1 project (before appearance, eyes and hair) opens with the defaults
    v1 = tmp_path / "old.likeness"
    with zipfile.ZipFile(v1, "w") as zf:
        zf.writestr("project.json", json.dumps({
            "format": "likeness-project", "format_version": 1, "name": "old",
            "arrays": {"identity": "identity.npy", "expression": "expression.npy"}}))
        for name, arr in (("identity.npy", np.zeros(100, np.float32)), ("expression.npy", np.zeros(53, np.float32))):
            buf = io.BytesIO()
            np.save(buf, arr)
            zf.writestr(name, buf.getvalue())
    old = load_project(v1)
    assert old.appearance is None and old.texture is None
    assert np.array_equal(avatar_texture(old), model.decode(None))


@pytest.mark.parametrize("damage", ["missing", "garbage", "truncated", "pickled", "wrong_shape"])
def test_damaged_model_file_gives_a_clear_message(tmp_path, model, damage):
    from core.appearance.model import DEFAULT_PATH
    p = tmp_path / "appearance.npz"
    if damage == "garbage":
        p.write_bytes(b"\x00not a model" * 50)
    elif damage == "truncated":
        p.write_bytes(DEFAULT_PATH.read_bytes()[:5000])
    elif damage == "pickled":
        np.savez(p, format=np.array(["likeness-appearance-v2", {"x": 1}], dtype=object))
    elif damage == "wrong_shape":
        np.savez(p, format=np.array("likeness-appearance-v2"), mean=np.zeros((8, 8, 3)),
                 basis=np.zeros((2, 5, 3)), noise=np.float32(1), covered=np.ones((8, 8), bool),
                 meta=np.array("{}"))
    with pytest.raises(AppearanceModelError) as err:
        AppearanceModel.load(p)
    msg = str(err.value)
    assert str(p) in msg and ("restore" in msg or "rebuild" in msg)


def test_photo_fit_fills_unseen_skin_from_the_code():
    """A photo shows one side: the far cheek, neck and ears come from the fitted texture code,
    whose colour follows the photo's skin rather than the default skin's."""
    from skimage import data

    from core.fitting.pipeline import reconstruct
    res = reconstruct(data.astronaut(), texture_size=256, name="astronaut")
    code = res.avatar.appearance
    assert code is not None and np.all(np.isfinite(code)) and np.abs(code).max() < 6
    tex = res.avatar.texture.astype(float)
    model = AppearanceModel.load()
    seen = res.texture.weight > 0.8
    unseen = model.covered & (res.texture.weight < 0.01)
    unseen = np.asarray(unseen)
    assert unseen.sum() > 1000 and seen.sum() > 500
    fill = model.decode(code, 256).astype(float)
    # unseen texels are the decoded code (up to the feathered low-frequency pull toward the photo)
    assert np.abs(tex[unseen] - fill[unseen]).mean() < 12
    # and the code's skin is nearer the photo's seen skin than the mean appearance is
    photo_tone = np.median(tex[seen], 0)
    mean_tone = np.median(model.decode(None, 256).astype(float)[seen], 0)
    code_tone = np.median(fill[seen], 0)
    assert np.abs(code_tone - photo_tone).sum() < np.abs(mean_tone - photo_tone).sum()


@pytest.mark.gui
def test_appearance_panel_edits_the_code(qtbot, display, model):
    from core.avatar import Avatar
    from app.panels.appearance_panel import AppearancePanel
    a = Avatar(np.zeros(100, np.float32))
    panel = AppearancePanel(a, model)
    qtbot.addWidget(panel)
    panel.sliders[0].setValue(100)                     # +1 sigma on the first component
    assert a.appearance is not None and a.appearance[0] == pytest.approx(1.0)
    panel.random_btn.click()
    assert np.abs(a.appearance).sum() > 0 and a.dirty
    panel.mean_btn.click()
    assert a.appearance is None
    panel.pupil.setValue(30)
    assert a.eyes.pupil_size == pytest.approx(0.3)
    panel.iris_preset.setCurrentText("blue")
    panel._iris_preset_chosen(panel.iris_preset.currentIndex())
    assert a.eyes.iris_colour == pytest.approx((0.30, 0.45, 0.65))
    a.set_texture(np.zeros((8, 8, 3), np.uint8))       # a photo texture: sliders are disabled
    assert not panel.sliders[0].isEnabled() and panel.drop_photo_btn.isVisibleTo(panel)
