"""Single-image fitting (issue 5): sample photos fit, bad photos get clear messages, the
texture has no holes, the CLI writes a usable avatar."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def fitter():
    from core.fitting import FaceFitter
    return FaceFitter()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data
    return data.astronaut()


@pytest.fixture(scope="module")
def hopper_path() -> Path:
    import matplotlib.cbook
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        return Path(f.name)


@pytest.fixture(scope="module")
def astronaut_fit(fitter, astronaut):
    from core.fitting.pipeline import reconstruct
    return reconstruct(astronaut, fitter=fitter, texture_size=512, name="astronaut")


def _face_box(result) -> np.ndarray:
    x, y, w, h = result.faces[result.face_index].box
    return np.array([x, y, x + w, y + h])


def _check_fit(result):
    """The fitted model's landmarks sit on the detected face, eyes on the landmarker's eyes."""
    fit = result.fit
    lm = fit.landmarks68
    x0, y0, x1, y1 = _face_box(result)
    pad = 0.15 * (x1 - x0)
    assert np.all((lm[:, 0] > x0 - pad) & (lm[:, 0] < x1 + pad) & (lm[:, 1] > y0 - pad) & (lm[:, 1] < y1 + pad))
    mp = result.faces[result.face_index].landmarks
    iod = np.linalg.norm(mp[33, :2] - mp[263, :2])
    # Multi-PIE 36 / 45 are the outer eye corners: MediaPipe 33 / 263 in the image
    assert np.linalg.norm(lm[36] - mp[33, :2]) < 0.12 * iod
    assert np.linalg.norm(lm[45] - mp[263, :2]) < 0.12 * iod
    assert np.all((fit.expression >= 0) & (fit.expression <= 1))
    assert np.all(np.isfinite(fit.identity)) and np.abs(fit.ict).max() < 6
    # the fitted head rendered with the photo's camera covers the detected face
    from core.fitting.pipeline import render_fit
    alpha = render_fit(result, "shaded")[..., 3] > 0
    box = np.zeros_like(alpha)
    box[int(y0):int(y1), int(x0):int(x1)] = True
    assert (alpha & box).sum() / box.sum() > 0.85


def test_astronaut_fits(astronaut_fit):
    _check_fit(astronaut_fit)
    assert astronaut_fit.fit.seconds < 30


def test_grace_hopper_fits(fitter, hopper_path):
    from core.fitting.pipeline import reconstruct
    res = reconstruct(hopper_path, fitter=fitter, texture_size=256)
    _check_fit(res)
    assert res.avatar.name == "grace_hopper"


def test_texture_has_no_holes_in_face_region(astronaut_fit):
    tex = astronaut_fit.texture
    face = tex.face_region & tex.covered
    assert face.sum() > 0.02 * face.size          # the face occupies a real part of the layout
    rgb = tex.texture.astype(np.float32)
    # a hole would show as black/unfilled texels; only pupils and nostrils are that dark
    assert (rgb[face].sum(-1) > 60).mean() > 0.99
    # the photo reaches most of the face region; the rest is filled, not left empty
    assert (tex.weight[face] > 0.25).mean() > 0.5
    # no seam: neighbouring texels inside the face region differ little (99th percentile)
    dx = np.abs(np.diff(rgb, axis=1)).max(-1)[face[:, 1:] & face[:, :-1]]
    assert np.percentile(dx, 99) < 40
    # skin tone is plausible for the photo (not the default texture's)
    assert tex.skin_tone[0] > tex.skin_tone[2]


def test_avatar_animates_exports_and_resets(astronaut_fit, fitter, tmp_path):
    from core.export import export_avatar
    from core.project import load_project, save_project
    av = astronaut_fit.avatar
    assert av.texture is not None and av.texture.shape[:2] == (512, 512)
    path = save_project(av, tmp_path / "astro.likeness")
    back = load_project(path)
    assert np.allclose(back.identity, av.identity) and np.allclose(back.expression, av.expression)
    # animates: the animator moves the mouth when jawOpen changes
    mesh = fitter.model.extract_mesh(back.identity, back.expression, 64)
    anim = fitter.model.animator(mesh, back.identity)
    w = np.zeros(53, np.float32)
    w[list(__import__("core.expressions", fromlist=["x"]).EXPRESSION_NAMES).index("jawOpen")] = 1.0
    assert np.abs(anim.vertices(w) - anim.vertices(np.zeros(53, np.float32))).max() > 0.5
    back.set_expression(np.zeros(53, np.float32))       # reset to neutral
    assert not back.expression.any()
    files = export_avatar(back, tmp_path / "astro.glb", fitter.model, resolution=64)
    assert files[0].stat().st_size > 10_000


def test_linear_points_match_model_landmarks(fitter):
    """The fitter's folded linear warp reproduces the model's own landmarks."""
    import torch

    from core.fitting.fit import LinearPoints
    m = fitter.model
    rng = np.random.default_rng(3)
    a = rng.standard_normal(100).astype(np.float32)
    w = rng.uniform(0, 0.6, 53).astype(np.float32)
    lp = LinearPoints(m, m.net.landmarks_template.numpy())
    got = lp(torch.from_numpy(a), torch.from_numpy(w)).numpy()
    assert np.abs(got - m.landmarks(m.encode_ict(a), w)).max() < 1e-3


def test_several_faces_largest_first_and_pick(fitter, astronaut):
    from core.fitting.pipeline import detect_faces, reconstruct
    face = astronaut[20:260, 130:330]
    small = np.asarray(Image.fromarray(face).resize((120, 144)))
    canvas = np.full((320, 560, 3), 200, np.uint8)
    canvas[20:260, 20:220] = face
    canvas[60:204, 380:500] = small
    image, scale, faces = detect_faces(canvas, fitter)
    assert len(faces) == 2 and faces[0].box[2] > faces[1].box[2]
    assert faces[0].box[0] < 220 < faces[1].box[0]
    res = reconstruct(canvas, face_index=1, fitter=fitter, detected=(image, scale, faces), texture_size=256)
    assert res.fit.landmarks68[:, 0].min() > 360                # the small face on the right was fitted


def test_no_face_and_tiny_photos(fitter):
    from core.fitting import FitError, PhotoError, load_photo
    from core.fitting.pipeline import detect_faces
    grey = np.full((300, 300, 3), 128, np.uint8)
    with pytest.raises(FitError, match="No face"):
        detect_faces(grey, fitter)
    with pytest.raises(PhotoError, match="only 30x20 pixels"):
        load_photo(np.zeros((20, 30, 3), np.uint8))


def test_tiny_face_in_a_large_photo(fitter, astronaut):
    from core.fitting import FitError
    from core.fitting.pipeline import detect_faces
    face = np.asarray(Image.fromarray(astronaut[20:260, 130:330]).resize((30, 36)))
    canvas = np.full((400, 400, 3), 180, np.uint8)
    canvas[100:136, 100:130] = face
    with pytest.raises(FitError, match="No face|too small"):
        detect_faces(canvas, fitter)


def test_huge_photo_is_reduced_and_fits(fitter, astronaut, tmp_path):
    from core.fitting import PhotoError, load_photo
    from core.fitting import photo as photo_mod
    big = Image.fromarray(astronaut).resize((4096, 4096), Image.Resampling.BILINEAR)
    path = tmp_path / "big.jpg"
    big.save(path, quality=85)
    image, scale = load_photo(path)
    assert max(image.shape[:2]) == photo_mod.MAX_FIT_SIDE and abs(scale - 1600 / 4096) < 1e-6
    assert len(fitter.detect(image)) == 1
    # beyond the pixel limit: a clear refusal, not a memory blow-up
    old = photo_mod.MAX_PIXELS
    photo_mod.MAX_PIXELS = 1_000_000
    try:
        with pytest.raises(PhotoError, match="megapixels|too large"):
            load_photo(path)
    finally:
        photo_mod.MAX_PIXELS = old


def test_grayscale_photo(fitter, astronaut, tmp_path):
    from core.fitting.pipeline import reconstruct
    path = tmp_path / "grey.png"
    Image.fromarray(astronaut).convert("L").save(path)
    res = reconstruct(path, fitter=fitter, texture_size=256)
    tex = res.texture.texture.astype(int)
    face = res.texture.face_region & (res.texture.weight > 0.9)
    # the photo's part of the texture stays grey (no invented colour)
    assert np.abs(tex[face][:, 0] - tex[face][:, 2]).mean() < 6


def test_exif_rotated_photo(fitter, astronaut, tmp_path):
    """A phone portrait: pixels stored sideways plus an orientation tag; it must load upright."""
    from core.fitting import load_photo
    stored = Image.fromarray(astronaut).transpose(Image.Transpose.ROTATE_90)  # sideways on disk
    exif = Image.Exif()
    exif[0x0112] = 6            # "rotate 90 CW to display"
    path = tmp_path / "phone.jpg"
    stored.save(path, exif=exif, quality=92)
    image, _ = load_photo(path)
    assert image.shape[:2] == astronaut.shape[:2]
    assert np.abs(image.astype(int) - astronaut.astype(int)).mean() < 12
    faces = fitter.detect(image)
    assert len(faces) == 1 and abs(faces[0].roll) < 25      # upright, not lying on its side


def test_unreadable_photos(tmp_path):
    from core.fitting import PhotoError, load_photo
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    with pytest.raises(PhotoError, match="not an image"):
        load_photo(bad)
    trunc = tmp_path / "trunc.png"
    Image.fromarray(np.zeros((200, 200, 3), np.uint8)).save(trunc)
    trunc.write_bytes(trunc.read_bytes()[:120])
    with pytest.raises(PhotoError):
        load_photo(trunc)
    with pytest.raises(PhotoError, match="does not exist"):
        load_photo(tmp_path / "missing.png")


def _main(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "main.py"), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def test_cli_fit_writes_avatar_overlay_and_glb(astronaut, tmp_path):
    photo = tmp_path / "astro.png"
    Image.fromarray(astronaut).save(photo)
    out, ov, glb = tmp_path / "a.likeness", tmp_path / "fit.png", tmp_path / "head.glb"
    r = _main("fit", str(photo), "--out", str(out), "--overlay", str(ov), "--export", str(glb), "--neutral")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["faces"] == 1 and info["expression"] == {}
    from core.project import load_project
    av = load_project(out)
    assert av.texture is not None and not av.expression.any()
    o = np.asarray(Image.open(ov))
    assert o.shape[1] == 2 * astronaut.shape[1]
    assert glb.stat().st_size > 10_000


def test_cli_fit_no_face_message(tmp_path):
    photo = tmp_path / "wall.png"
    Image.fromarray(np.full((240, 320, 3), 90, np.uint8)).save(photo)
    r = _main("fit", str(photo), "--out", str(tmp_path / "x.likeness"))
    assert r.returncode == 2 and "No face was found" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "x.likeness").exists()


def test_eval_fit_on_annotated_photos(tmp_path):
    from core.paths import SHARED_DIR
    src = SHARED_DIR / "faces68"
    if not src.is_dir():
        pytest.skip(f"{src} not present")
    names = sorted(p.stem for p in src.glob("*.pts"))[:3]
    for n in names:
        (tmp_path / f"{n}.jpg").symlink_to(src / f"{n}.jpg")
        (tmp_path / f"{n}.pts").symlink_to(src / f"{n}.pts")
    r = _main("eval-fit", "--faces", str(tmp_path))
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["photos"] == 3 and res["fitted"] == 3
    assert res["nme_mean"] < 0.08 and res["seconds_per_photo"] < 30
