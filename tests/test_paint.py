"""Texture painting core (core/paint): blend formulas, dab falloff and stroke semantics,
symmetry, fills, seam padding, exact tile undo, PSD/PNG files, project storage and the
`texture` command. Small stacks (1024^2) and synthetic UV layouts keep it to seconds."""
from __future__ import annotations

import hashlib
import json
import zipfile

import numpy as np
import pytest

from core.avatar import Avatar
from core.paint import (BrushSettings, LayerStack, MirrorMap, PaintError, begin_stroke, fill,
                        pick_colour, stamp_decal)
from core.paint.avatar import attach_paint, paint_of
from core.paint.blend import blend
from core.paint.files import export_layers, import_image_layer, paint_members, read_paint
from core.paint.tiles import TILE

S = 1024


def grey_stack(value: int = 0, **kw) -> LayerStack:
    return LayerStack(S, base=np.full((S, S, 3), value, np.uint8), **kw)


def state_hash(stack: LayerStack) -> str:
    h = hashlib.sha1()
    for l in stack.layers:
        h.update(repr((l.name, l.opacity, l.blend, l.visible, l.locked)).encode())
        h.update(l.to_array().tobytes())
        h.update(b"-" if l.mask is None else l.mask.tobytes())
    return h.hexdigest()


def discs() -> np.ndarray:
    yy, xx = np.mgrid[0:S, 0:S]
    return ((xx - 300) ** 2 + (yy - 500) ** 2 < 200 ** 2) | ((xx - 750) ** 2 + (yy - 500) ** 2 < 150 ** 2)


# ---------------------------------------------------------------------------- blend modes
def test_blend_formulas_on_known_pixels():
    cb = np.array([[0.2, 0.8, 0.5]], np.float32)
    cs = np.array([[0.6, 0.3, 0.5]], np.float32)
    np.testing.assert_allclose(blend("multiply", cb, cs), [[0.12, 0.24, 0.25]], atol=1e-6)
    np.testing.assert_allclose(blend("screen", cb, cs), [[0.68, 0.86, 0.75]], atol=1e-6)
    # overlay = hard light(cs, cb): cb <= .5 -> 2 cb cs; else screen(cs, 2 cb - 1)
    np.testing.assert_allclose(blend("overlay", cb, cs), [[0.24, 0.3 + 0.6 - 0.18, 0.5]], atol=1e-6)
    # soft light, W3C: cs > .5 uses D(cb) = ((16cb - 12)cb + 4)cb for cb <= .25, sqrt(cb) above
    d = ((16 * 0.2 - 12) * 0.2 + 4) * 0.2
    expect_r = 0.2 + (2 * 0.6 - 1) * (d - 0.2)
    expect_g = 0.8 - (1 - 2 * 0.3) * 0.8 * (1 - 0.8)
    np.testing.assert_allclose(blend("soft light", cb, cs), [[expect_r, expect_g, 0.5]], atol=1e-6)
    # colour (non-separable): red's hue/saturation with grey's luminosity, clipped into gamut
    out = blend("colour", np.array([[0.5, 0.5, 0.5]], np.float32), np.array([[1.0, 0.0, 0.0]], np.float32))
    np.testing.assert_allclose(out, [[1.0, 0.5 - 0.3 * 0.5 / 0.7, 0.5 - 0.3 * 0.5 / 0.7]], atol=1e-5)
    lum = lambda c: 0.3 * c[..., 0] + 0.59 * c[..., 1] + 0.11 * c[..., 2]  # noqa: E731
    np.testing.assert_allclose(lum(out), 0.5, atol=1e-5)


@pytest.mark.parametrize("mode", ["normal", "multiply", "screen", "overlay", "soft light", "colour"])
def test_stack_composites_with_each_mode(mode):
    base = np.zeros((S, S, 3), np.uint8)
    base[...] = (51, 204, 128)
    st = LayerStack(S, base=base)
    px = np.zeros((S, S, 4), np.uint8)
    px[:64, :64] = (153, 77, 128, 255)
    px[64:128, :64] = (153, 77, 128, 128)     # half alpha
    st.add_layer("l", pixels=px, blend=mode, opacity=0.75)
    comp = st.composite()
    cb, cs = base[0, 0] / 255.0, px[0, 0, :3] / 255.0
    b = blend(mode, cb[None].astype(np.float32), cs[None].astype(np.float32))[0]
    for row, a in ((0, 0.75), (64, 0.75 * 128 / 255)):
        want = np.clip((cb + a * (b - cb)) * 255 + 0.5, 0, 255).astype(int)
        assert np.abs(comp[row, 10].astype(int) - want).max() <= 1, (mode, comp[row, 10], want)
    assert np.array_equal(comp[300, 300], base[0, 0])   # untouched texels show the base


# ---------------------------------------------------------------------------- strokes
def test_dab_paints_expected_texels_with_falloff():
    st = grey_stack(0)
    st.add_layer()
    s = begin_stroke(st, 0, "brush", BrushSettings(size=32, hardness=0.0, colour=(255, 255, 255)))
    s.dab(200.0, 100.0)      # centre at texel (199.5, 99.5) + 0.5: texel 200's centre is 200.5
    s.end()
    comp = st.composite()[..., 0].astype(float)
    r = 16.0
    for dist in (0.5, 4.5, 8.5, 12.5):
        t = (dist) / r
        want = 255 * (1 - t * t * (3 - 2 * t))
        assert abs(comp[100, int(200 + dist - 0.5)] - want) <= 1.5, (dist, comp[100, int(200 + dist - 0.5)], want)
    assert comp[100, 200 + 17] == 0 and comp[100 + 17, 200] == 0
    assert comp[100, 200 - 16] < 2
    # only the tiles under the dab were allocated
    assert set(st.layers[0].pixels.tiles) <= {(1, 2), (1, 3), (2, 2), (2, 3), (0, 2), (0, 3), (1, 4), (2, 4)}


def test_overlapping_dabs_do_not_pile_up_and_flow_builds_up():
    st = grey_stack(0)
    st.add_layer()
    s = begin_stroke(st, 0, "brush", BrushSettings(size=20, hardness=1.0, opacity=0.5, colour=(255, 0, 0)))
    for _ in range(10):
        s.dab(100.0, 100.0)
    s.end()
    assert st.layers[0].to_array()[100, 100, 3] == 128          # opacity caps the stroke
    s = begin_stroke(st, 0, "brush", BrushSettings(size=20, hardness=1.0, opacity=1.0, flow=0.25,
                                                   colour=(0, 0, 255)))
    s.dab(300.0, 300.0)
    once = st.layers[0].to_array()[300, 300, 3]
    for _ in range(30):
        s.dab(300.0, 300.0)
    s.end()
    assert 60 <= once <= 68 and st.layers[0].to_array()[300, 300, 3] >= 250   # builds up to the dab


def test_spacing_pressure_stabiliser_and_jitter():
    st = grey_stack(0)
    st.add_layer()
    brush = BrushSettings(size=40, spacing=0.25, colour=(255, 255, 255))
    s = begin_stroke(st, 0, "brush", brush)
    n = sum(len(s.path.add(x, 500.0)) for x in np.linspace(100, 200, 7))
    assert n == 11                            # a dab every 10 texels, the first at the start
    s.end()
    # pressure scales the size
    s = begin_stroke(st, 0, "brush", brush)
    s.dab(600.0, 200.0, pressure=0.25)
    s.end()
    comp = st.composite()[..., 0]
    assert comp[200, 600] == 255 and comp[200, 606] == 0       # radius 5, not 20
    # pressure on opacity instead
    s = begin_stroke(st, 0, "brush", brush.with_(pressure_size=False, pressure_opacity=True, hardness=1.0))
    s.dab(800.0, 200.0, pressure=0.5)
    s.end()
    assert abs(int(st.layers[0].to_array()[200, 800, 3]) - 128) <= 1
    assert st.layers[0].to_array()[200, 815, 3] > 120             # full size
    # the lazy-mouse string holds the brush until the pointer pulls it
    from core.paint.brush import DabPath
    p = DabPath(BrushSettings(size=10, stabiliser=20.0, spacing=0.1))
    assert len(p.add(0, 0)) == 1 and p.add(15, 0) == [] and p.add(30, 0)
    assert abs(p._last[0] - 10.0) < 1e-6
    # jitter is seeded
    j = BrushSettings(size=6, spacing=2.0, jitter=2.0)
    a = [(d.x, d.y) for d in DabPath(j, seed=3).add(0, 0) + DabPath(j, seed=3).add(0, 0)]
    assert a[0] == a[1] and a[0] != (0.0, 0.0)


def test_eraser_smudge_blur_clone_stencil_eyedropper():
    st = grey_stack(0)
    st.add_layer()
    st.add_layer("top")
    red = np.zeros((S, S, 4), np.uint8)
    red[:, :512] = (255, 0, 0, 255)
    st.layers[0].pixels.write((0, S, 0, S), red)
    st.mark_dirty((0, S, 0, S))
    assert pick_colour(st, 100, 100) == (255, 0, 0) and pick_colour(st, 900, 100, radius=2) == (0, 0, 0)
    # eraser: alpha goes, colour stays
    s = begin_stroke(st, 0, "eraser", BrushSettings(size=20, hardness=1.0))
    s.dab(100.0, 100.0)
    s.end()
    assert st.layers[0].to_array()[100, 100, 3] == 0
    # smudge drags red across the border into the empty half
    s = begin_stroke(st, 0, "smudge", BrushSettings(size=30, strength=1.0, spacing=0.1))
    for x in range(490, 560, 2):
        s.add_point(float(x), 300.0)
    s.end()
    assert st.layers[0].to_array()[300, 530, 3] > 100
    # blur softens the hard edge
    s = begin_stroke(st, 0, "blur", BrushSettings(size=40, strength=1.0))
    s.dab(512.0, 700.0)
    s.end()
    row = st.layers[0].to_array()[700, 500:525, 3].astype(int)
    assert 0 < row[12] < 255 and row[0] > row[-1]
    # clone: what is seen 300 texels to the left appears under the brush (on another layer)
    s = begin_stroke(st, 1, "clone", BrushSettings(size=20, hardness=1.0), clone_offset=(-300, 0))
    s.dab(800.0, 900.0)
    s.end()
    assert tuple(st.composite()[900, 800]) == (255, 0, 0)
    # decal: an RGBA image stamped with its alpha
    img = np.zeros((32, 32, 4), np.uint8)
    img[8:24, 8:24] = (0, 255, 0, 255)
    stamp_decal(st, 1, img, x=600, y=600)
    assert tuple(st.composite()[616, 616]) == (0, 255, 0) and tuple(st.composite()[602, 602]) == (0, 0, 0)


def test_per_dab_composite_during_a_stroke_equals_full_flatten():
    st = _painted_stack()                      # six blended layers + an empty one
    st.set_coverage(discs())
    st.composite()
    s = begin_stroke(st, 2, "brush", BrushSettings(size=50, flow=0.6, colour=(10, 200, 90)))
    for x in np.linspace(40, 900, 60):         # composite read back after every event, as the GUI does
        s.add_point(float(x), 300 + 200 * np.sin(x / 90))
        for r in st.refresh():
            assert r[0] % TILE == 0 and r[2] % TILE == 0
    assert not st._dirty.any()
    s.end()
    assert np.array_equal(st.composite(), st.flatten())


def test_resolution_change_is_undoable():
    st = grey_stack(0)
    st.add_layer()
    s = begin_stroke(st, 0, "brush", BrushSettings(size=40, colour=(255, 255, 255)))
    s.dab(100.0, 100.0)
    s.end()
    before = state_hash(st)
    st.set_resolution(2048)
    assert st.size == 2048 and st.layers[0].to_array()[200, 200, 3] == 255 and st.composite().shape == (2048, 2048, 3)
    st.undo()
    assert st.size == S and state_hash(st) == before and np.array_equal(st.composite(), st.flatten())


def test_locked_layer_refuses_paint():
    st = grey_stack()
    st.add_layer()
    st.set_layer(0, locked=True)
    with pytest.raises(PaintError, match="locked"):
        begin_stroke(st, 0, "brush", BrushSettings())


# ---------------------------------------------------------------------------- symmetry, fill, seams
def _mirror_uv() -> np.ndarray:
    """x -> S-1-x mirror as UVs in the texel convention u * (S - 1)."""
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32)
    u = (S - 1 - xx) / (S - 1)
    v = 1.0 - yy / (S - 1)
    return np.dstack([u, v])


def test_symmetric_dab_lands_on_mirror_texels():
    for mm in (MirrorMap.from_uv(_mirror_uv(), S),
               MirrorMap.from_indices((np.arange(S)[:, None] * S + (S - 1 - np.arange(S))[None, :]).reshape(-1), S)):
        st = grey_stack(0)
        st.add_layer()
        s = begin_stroke(st, 0, "brush", BrushSettings(size=24, hardness=0.3, colour=(255, 255, 255)),
                         symmetry=mm)
        rects = s.dab(200.0, 300.0)
        s.end()
        assert len(rects) == 2
        a = st.layers[0].to_array()[..., 3]
        assert np.array_equal(a[:, :512], a[:, ::-1][:, :512])     # the painted image is mirrored
        assert a[300, 200] == 255 and a[300, S - 1 - 200] == 255 and a[:, 300:700].max() == 0


def _symmetry_on_the_face_models_uv_layout() -> None:
    from core.facemodel import FaceModel
    from core.paint.layout import uv_layout

    model = FaceModel.load()
    lay = uv_layout(model.extract_mesh(model.mean_identity(), None, 64), S)
    assert 0.3 < lay.coverage.mean() < 0.95, lay.coverage.mean()
    t = lay.template
    ys, xs = np.nonzero(lay.coverage & lay.mirror.valid & (t[..., 0] > 3.5) & (t[..., 0] < 4.5))
    front = np.argmax(t[ys, xs, 2])                   # the most forward texel: the cheek
    st = LayerStack(S, base=np.zeros((S, S, 3), np.uint8), coverage=lay.coverage)
    st.add_layer()
    s = begin_stroke(st, 0, "brush", BrushSettings(size=16, hardness=1.0, colour=(255, 255, 255)),
                     symmetry=lay.mirror, mask=lay.coverage)
    assert len(s.dab(float(xs[front]) + 0.5, float(ys[front]) + 0.5)) == 2
    s.end()
    painted = (st.layers[0].to_array()[..., 3] > 128) & lay.coverage
    pts = t[painted]
    right, left = pts[pts[:, 0] > 0], pts[pts[:, 0] < 0]
    assert len(left) > 0.5 * len(right) > 20
    err = np.linalg.norm(left.mean(0) - right.mean(0) * np.array([-1, 1, 1]))
    assert err < 0.3, err                             # centimetres


def test_symmetry_on_the_face_models_uv_layout():
    """On the shipped face model's UV layout, a dab on the left cheek is mirrored onto texels whose
    3D template points are the mirror image (x -> -x) of the dab's.

    Run in a fresh interpreter: late in the full suite (after many GUI and headless GL tests in
    one process) the UV raster of this process's EGL context came back with 0.17% coverage,
    the same every time, while the test passes alone and after any half of the suite; the
    cause is not found yet (see the session notes)."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    code = ("import sys; sys.path[:0] = [%r, %r]; import test_paint; "
            "test_paint._symmetry_on_the_face_models_uv_layout()" % (str(repo), str(repo / "tests")))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]


def test_fill_stays_inside_island_and_selection():
    cov = discs()
    st = grey_stack(0, coverage=cov, padding=0)
    st.add_layer()
    fill(st, 0, 300, 500, (0, 0, 255))
    a = st.layers[0].to_array()[..., 3] > 0
    assert a[500, 300] and not a[500, 750] and np.array_equal(a, discs() & (np.arange(S)[None, :] < 520))
    sel = np.zeros((S, S), bool)
    sel[:, 700:] = True
    fill(st, 0, 760, 500, (0, 255, 0), selection=sel)
    g = st.layers[0].to_array()[..., 1] == 255
    assert g[500, 760] and not g[500, 650] and not g[:, :700].any()
    with pytest.raises(PaintError, match="outside the UV islands"):
        fill(st, 0, 5, 5, (1, 2, 3))
    # by colour: the blue disc only, not the black around it
    st2 = grey_stack(0)
    st2.add_layer()
    st2.add_layer()
    fill(st, 0, 300, 500, (0, 0, 255))
    st2.layers[0].pixels = st.layers[0].pixels.copy()
    st2.mark_dirty((0, S, 0, S))
    fill(st2, 1, 300, 500, (255, 255, 0), mode="colour", tolerance=10)
    y = st2.layers[1].to_array()[..., 3] > 0
    assert y[500, 300] and not y[500, 600] and not y[500, 760]


def test_seam_padding_incremental_equals_full_and_fills_the_border():
    cov = discs()
    st = grey_stack(20, coverage=cov, padding=4)
    st.add_layer()
    st.composite()
    s = begin_stroke(st, 0, "brush", BrushSettings(size=30, hardness=1.0, colour=(250, 0, 0)),
                     mask=cov)                 # paint limited to the islands
    for x in np.linspace(60, 200, 30):       # across the left disc's rim
        s.add_point(float(x), 500.0)
    s.end()
    comp = st.composite()
    assert np.array_equal(comp, st.flatten())
    # texels just outside the island (it starts at x = 101 on row 500) take the painted colour
    assert st.layers[0].to_array()[500, 100, 3] == 0 and st.layers[0].to_array()[500, 101, 3] == 255
    assert comp[500, 100, 0] == 250 and comp[500, 97, 0] == 250 and comp[500, 96, 0] == 20
    s = begin_stroke(st, 0, "eraser", BrushSettings(size=60, hardness=1.0))
    s.dab(110.0, 500.0)
    s.end()
    assert np.array_equal(st.composite(), st.flatten())


# ---------------------------------------------------------------------------- undo
def test_undo_redo_restore_bytes_exactly():
    st = grey_stack(10)
    states = [state_hash(st)]
    rng = np.random.default_rng(1)

    def stroke(i: int, tool: str = "brush") -> None:
        s = begin_stroke(st, i, tool, BrushSettings(size=float(rng.integers(8, 60)), flow=0.5, spacing=0.3,
                                                    colour=tuple(int(c) for c in rng.integers(0, 256, 3))))
        start = 500 + rng.uniform(-30, 30, 2)      # every stroke crosses the same area
        for p in start + np.cumsum(rng.uniform(-40, 40, (8, 2)), axis=0):
            s.add_point(*p, pressure=float(rng.uniform(0.2, 1)))
        s.end()

    ops = [lambda: st.add_layer("a"), lambda: stroke(0), lambda: st.duplicate_layer(0), lambda: stroke(1, "smudge"),
           lambda: st.rename_layer(1, "b"), lambda: st.set_layer(1, opacity=0.3, blend="screen"),
           lambda: st.add_layer("c"), lambda: stroke(2), lambda: st.move_layer(2, 0),
           lambda: st.set_layer(0, mask=np.eye(S, dtype=bool), visible=False),
           lambda: stroke(1, "eraser"), lambda: stroke(1, "blur"), lambda: st.delete_layer(0),
           lambda: fill(st, 0, 10, 10, (1, 2, 3), mode="colour")]
    for op in ops:
        n = len(st.history.done)
        op()
        if len(st.history.done) > n:        # a stroke that changed nothing leaves no step
            states.append(state_hash(st))
    comp_end = st.composite().copy()
    assert len(states) >= 12 and len(set(states)) == len(states)
    for want in reversed(states[:-1]):
        assert st.undo() is not None
        assert state_hash(st) == want
    assert st.undo() is None
    assert np.array_equal(st.composite(), st.flatten())
    for want in states[1:]:
        assert st.redo() is not None
        assert state_hash(st) == want
    assert np.array_equal(st.composite(), comp_end)
    names = [n for n, _, _ in st.history.entries()]
    assert names[0] == "Add layer a" and "Fill" in names and "Delete layer c" in names


def test_undo_memory_proportional_to_touched_area_and_budget():
    st = grey_stack(0)
    st.add_layer()

    def line(size: float, length: float) -> int:
        s = begin_stroke(st, 0, "brush", BrushSettings(size=size, colour=(255, 0, 0)))
        for x in np.linspace(100, 100 + length, 40):
            s.add_point(float(x), 512.0)
        return s.end().nbytes

    small, large = line(10, 50), line(200, 700)
    assert small <= 4 * 2 * TILE * TILE * 4 + 1024                # a few tiles, before + after
    assert 10 * small < large < 2 * S * S * 4                     # grows with the area
    st.history.set_budget(large + small)                          # keeps only what fits
    assert st.history.nbytes <= large + small and len(st.history.done) <= 2
    st2 = grey_stack(0)
    st2.add_layer()
    for i in range(120):
        s = begin_stroke(st2, 0, "brush", BrushSettings(size=20))
        s.dab(float(20 + (i * 37) % 900), float(20 + (i * 53) % 900))
        s.end()
    assert len(st2.history.done) == 121                          # >= 100 steps at the default budget


# ---------------------------------------------------------------------------- files
def _painted_stack() -> LayerStack:
    rng = np.random.default_rng(5)
    st = grey_stack(90)
    for i, (mode, op) in enumerate([("normal", 1.0), ("multiply", 0.5), ("screen", 0.3),
                                    ("overlay", 0.8), ("soft light", 0.6), ("colour", 0.9)]):
        px = np.zeros((S, S, 4), np.uint8)
        y, x = 100 + 120 * i, 50 + 100 * i
        px[y:y + 150, x:x + 300] = rng.integers(0, 256, (150, 300, 4), dtype=np.uint8)
        st.add_layer(f"layer {i} ü", pixels=px, blend=mode, opacity=op, visible=(i != 2))
    st.add_layer("empty")
    return st


def test_psd_round_trip(tmp_path):
    from core.paint.psd import export_psd, import_psd

    st = _painted_stack()
    export_psd(st, tmp_path / "t.psd")
    st2 = grey_stack(90)
    layers, notes = import_psd(st2, tmp_path / "t.psd")
    assert any("Base" in n for n in notes)
    assert [l.name for l in st2.layers] == [l.name for l in st.layers]
    for a, b in zip(st.layers, st2.layers):
        assert b.blend == a.blend and b.visible == a.visible and abs(b.opacity - a.opacity) <= 0.5 / 255
        assert np.array_equal(a.to_array(), b.to_array())
    assert st2.undo().startswith("Import")and not st2.layers


def test_bad_psd_files(tmp_path):
    from psd_tools import PSDImage

    from core.paint.psd import read_psd

    (tmp_path / "junk.psd").write_bytes(b"8BPS" + bytes(range(200)))
    with pytest.raises(PaintError, match="damaged"):
        read_psd(tmp_path / "junk.psd", S)
    for mode, depth, match in (("RGB", 16, "8-bit"), ("CMYK", 8, "RGB")):
        doc = PSDImage.new(mode, (64, 64), depth=depth)
        doc.save(tmp_path / f"{mode}{depth}.psd")
        with pytest.raises(PaintError, match=match):
            read_psd(tmp_path / f"{mode}{depth}.psd", S)


def test_png_import_export_and_bad_images(tmp_path):
    from PIL import Image

    st = grey_stack(0)
    img = np.zeros((300, 200, 4), np.uint8)
    img[..., 1] = 200
    img[..., 3] = 255
    Image.fromarray(img, "RGBA").save(tmp_path / "g.png")
    layer, note = import_image_layer(st, tmp_path / "g.png", blend="multiply", opacity=0.5)
    assert "resampled" in note and "stretched" in note
    assert layer.blend == "multiply" and layer.to_array().shape == (S, S, 4)
    files = export_layers(st, tmp_path / "layers")
    back = np.asarray(Image.open(files[0]))
    assert back.shape == (S, S, 4) and np.array_equal(back, layer.to_array())
    good = (tmp_path / "g.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "text.png").write_bytes(b"hello, not an image")
    for name, match in (("cut.png", "damaged"), ("text.png", "not an image")):
        with pytest.raises(PaintError, match=match):
            import_image_layer(st, tmp_path / name)
    with pytest.raises(PaintError, match="does not exist"):
        import_image_layer(st, tmp_path / "missing.png")
    assert len(st.layers) == 1                                     # nothing changed


def test_paint_folder_round_trip_and_damage():
    st = _painted_stack()
    st.set_layer(0, mask=np.tril(np.ones((S, S), bool)), locked=True)
    members = paint_members(st)
    st2 = read_paint(members.__getitem__)
    assert state_hash(st2) == state_hash(st) and not st2.history.done
    bad = dict(members)
    bad["paint/layer_001.png"] = b"\x89PNG\r\n\x1a\n" + b"0" * 50
    with pytest.raises(PaintError, match="layer_001.png"):
        read_paint(bad.__getitem__)
    del bad["paint/layer_001.png"]
    with pytest.raises(PaintError, match="missing"):
        read_paint(bad.__getitem__)


def test_recovery_file_round_trip_and_damage(tmp_path):
    from core.paint.files import load_recovery, save_recovery

    st = _painted_stack()
    save_recovery(st, tmp_path / "r.zip")
    assert state_hash(load_recovery(tmp_path / "r.zip")) == state_hash(st)
    raw = (tmp_path / "r.zip").read_bytes()
    (tmp_path / "cut.zip").write_bytes(raw[: len(raw) // 3])
    with pytest.raises(PaintError, match="damaged"):
        load_recovery(tmp_path / "cut.zip")


def test_project_round_trip_with_layers_and_older_projects(tmp_path):
    from core.appearance import avatar_texture
    from core.project import load_project, save_project

    tex = np.full((256, 256, 3), 90, np.uint8)
    av = Avatar(np.zeros(16, np.float32), texture=tex, name="painted")
    st = _painted_stack()
    attach_paint(av, st)
    shown = avatar_texture(av)                      # what the renderer and exports use
    assert shown.shape == (S, S, 3) and np.array_equal(shown, st.flatten())
    path = save_project(av, tmp_path / "p.likeness")
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("project.json"))
        assert manifest["format_version"] >= 3 and manifest["paint"] == "paint/layers.json"
        assert sum(n.startswith("paint/layer_") for n in zf.namelist()) == len(st.layers)
    back = load_project(path)
    assert state_hash(paint_of(back)) == state_hash(st)
    assert np.array_equal(avatar_texture(back), shown)
    # a format-2 file (no paint folder) opens with no paint layers
    plain = save_project(Avatar(np.zeros(16, np.float32), texture=tex), tmp_path / "old.likeness")
    with zipfile.ZipFile(plain) as zf:
        items = {n: zf.read(n) for n in zf.namelist()}
    m = json.loads(items["project.json"])
    m["format_version"] = 2
    items["project.json"] = json.dumps(m).encode()
    with zipfile.ZipFile(plain, "w") as zf:
        for n, d in items.items():
            zf.writestr(n, d)
    old = load_project(plain)
    assert paint_of(old) is None and np.array_equal(avatar_texture(old), tex)


# ---------------------------------------------------------------------------- CLI
def _cli(argv: list[str]) -> int:
    from core.commands import build_parser
    args = build_parser().parse_args(argv)
    return args.run(args)


def test_texture_command(tmp_path, capsys):
    from PIL import Image

    from core.project import load_project, save_project

    save_project(Avatar(np.zeros(16, np.float32), texture=np.full((512, 512, 3), 128, np.uint8)),
                 tmp_path / "a.likeness")
    img = np.zeros((2048, 2048, 4), np.uint8)
    img[:1024, :, :] = (255, 0, 0, 255)
    Image.fromarray(img, "RGBA").save(tmp_path / "red.png")
    rc = _cli(["texture", str(tmp_path / "a.likeness"), "--resolution", "1024",
               "--add-layer", str(tmp_path / "red.png"),
               "--blend", "multiply", "--opacity", "0.5", "--name", "tint",
               "--flatten", str(tmp_path / "flat.png"), "--export-psd", str(tmp_path / "o.psd"),
               "--export-layers", str(tmp_path / "layers"), "--out", str(tmp_path / "b.likeness")])
    assert rc == 0
    flat = np.asarray(Image.open(tmp_path / "flat.png"))
    # multiply by red at 50%: R stays 128, G and B halve
    assert tuple(flat[10, 10]) == (128, 64, 64) and tuple(flat[1000, 10]) == (128, 128, 128)
    back = load_project(tmp_path / "b.likeness")
    layer = paint_of(back).layers[0]
    assert (layer.name, layer.blend, layer.opacity) == ("tint", "multiply", 0.5)
    assert (tmp_path / "o.psd").stat().st_size > 0 and len(list((tmp_path / "layers").iterdir())) == 1
    capsys.readouterr()
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 40)
    for argv, match in (
            (["--add-layer", str(tmp_path / "bad.png"), "--out", str(tmp_path / "c.likeness")], "damaged"),
            (["--add-layer", str(tmp_path / "nope.png")], "does not exist"),
            (["--add-layer", str(tmp_path / "red.png"), "--blend", "dodge"], "blend mode"),
            (["--add-layer", str(tmp_path / "red.png"), "--opacity", "2"], "between 0 and 1"),
            (["--import-psd", str(tmp_path / "bad.png")], "damaged"),
            ([], "nothing to do")):
        assert _cli(["texture", str(tmp_path / "b.likeness")] + argv) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("error: ") and match in err, err
    assert not (tmp_path / "c.likeness").exists()


def test_tile_screen_boxes_cover_the_texels_shown():
    """The viewport's partial frames redraw the screen box of painted texels, found from
    per-tile boxes a view keeps (TexelMap.tile_boxes): their union must cover every texel of
    the rects, as the dense projection (TexelMap.screen_box) finds it."""
    from core.paint.projection import build_texel_map
    from core.render import OrbitCamera

    # a wavy sheet whose uv is its (x, y): every texel is covered
    n = 24
    u, v = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n))
    verts = np.stack([u.ravel() * 10, v.ravel() * 10, np.sin(u.ravel() * 6) * 0.8], 1).astype(np.float32)
    uvs = np.stack([u.ravel(), v.ravel()], 1).astype(np.float32)
    q = np.arange(n * n).reshape(n, n)[:-1, :-1].ravel()
    faces = np.concatenate([np.stack([q, q + 1, q + n + 1], 1), np.stack([q, q + n + 1, q + n], 1)])
    tm = build_texel_map(verts, faces, uvs, 512)
    cam = OrbitCamera()
    cam.yaw, cam.pitch = 25.0, 10.0
    cam.frame(verts.min(0), verts.max(0))
    vp = cam.view_proj(300, 200)
    for rect in ((100, 140, 60, 90), (0, 64, 448, 512), (200, 330, 10, 500)):
        dense = tm.screen_box(verts, vp, 300, 200, [rect], budget=10**7)
        ty0, ty1, tx0, tx1 = rect[0] // 64, -(-rect[1] // 64), rect[2] // 64, -(-rect[3] // 64)
        tiles = np.array([(a, b) for a in range(ty0, ty1) for b in range(tx0, tx1)])
        b = tm.tile_boxes(verts, vp, 300, 200, tiles)
        b = b[~np.isnan(b[:, 0])]
        union = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
        # whole tiles sampled every 4 texels: the union holds the rect's texels, give or take
        # the pixel that 4 texels span here
        assert union[0] <= dense[0] + 1 and union[1] <= dense[1] + 1, (rect, union, dense)
        assert union[2] >= dense[2] - 2 and union[3] >= dense[3] - 2, (rect, union, dense)


def test_layer_snapshot_is_copy_on_write():
    """The autosave reads a snapshot of the layers on a worker while painting goes on: the
    snapshot shares tiles until the live layer writes one, and never sees later paint."""
    st = LayerStack(1024)
    st.add_layer("a")
    s = begin_stroke(st, 0, "brush", BrushSettings(size=40, colour=(200, 10, 10)))
    s.add_point(100, 100)
    s.add_point(300, 120)
    s.end()
    live = st.layers[0]
    before = live.to_array()
    snap = live.snapshot()
    assert snap.pixels.tiles and all(snap.pixels.tiles[k] is live.pixels.tiles[k] for k in snap.pixels.tiles)
    s = begin_stroke(st, 0, "brush", BrushSettings(size=40, colour=(10, 10, 200)))
    s.add_point(120, 100)
    s.add_point(600, 400)
    s.end()
    assert np.array_equal(snap.to_array(), before), "later paint must not reach the snapshot"
    assert not np.array_equal(live.to_array(), before)
    st.undo()
    assert np.array_equal(live.to_array(), before)
    st.redo()
    s = begin_stroke(st, 0, "eraser", BrushSettings(size=80))   # writes tiles shared with snap
    s.add_point(100, 100)
    s.end()
    assert np.array_equal(snap.to_array(), before)
