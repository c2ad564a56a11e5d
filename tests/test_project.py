"""The .likeness project file: exact round trip, atomic save, clear errors for damaged files."""
from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest

from core.avatar import Avatar, ViewSettings
from core.expressions import NUM_EXPRESSIONS, parse_expression
from core.project import FORMAT_VERSION, ProjectError, load_project, save_project


def make_avatar(seed: int = 0, dim: int = 32) -> Avatar:
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    avatar = Avatar(rng.normal(size=dim).astype(np.float32), parse_expression("happy"), texture,
                    name="Ada", view=ViewSettings(mode="normals", geometry="sdf",
                                                  background=(0.1, 0.2, 0.3), show_landmarks=True,
                                                  lighting="ibl"))
    avatar.set_weight("jawOpen", 0.3141592)
    return avatar


def test_round_trip_is_exact(tmp_path):
    a = make_avatar()
    path = save_project(a, tmp_path / "ada.likeness")
    b = load_project(path)
    assert np.array_equal(a.identity, b.identity) and b.identity.dtype == np.float32
    assert np.array_equal(a.expression, b.expression)
    assert np.array_equal(a.texture, b.texture)
    assert b.view == a.view and b.name == "Ada"
    assert not b.dirty


def test_round_trip_without_texture_and_member_layout(tmp_path):
    a = Avatar(np.zeros(8, np.float32))
    path = save_project(a, tmp_path / "plain.likeness")
    b = load_project(path)
    assert b.texture is None and np.array_equal(b.expression, np.zeros(NUM_EXPRESSIONS))
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("project.json"))
    assert {"project.json", "identity.npy", "expression.npy"} <= names
    assert manifest["format_version"] == FORMAT_VERSION and "app_version" in manifest


def test_save_is_atomic_and_overwrites(tmp_path):
    path = tmp_path / "a.likeness"
    save_project(make_avatar(1), path)
    save_project(make_avatar(2), path)
    assert np.array_equal(load_project(path).identity, make_avatar(2).identity)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.likeness"]  # no temp files left


def test_failed_save_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "a.likeness"
    save_project(make_avatar(1), path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(ProjectError, match="No space left"):
        save_project(make_avatar(2), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.likeness"]


def _rewrite(src, dst, drop=(), replace=None):
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            if name in drop:
                continue
            zout.writestr(name, replace.get(name, zin.read(name)))
    return dst


def _npy(arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.fixture
def good(tmp_path):
    return save_project(make_avatar(), tmp_path / "good.likeness")


def test_not_a_zip(tmp_path):
    bad = tmp_path / "bad.likeness"
    bad.write_bytes(b"hello, I am not a project")
    with pytest.raises(ProjectError, match="not a zip"):
        load_project(bad)


def test_truncated_file(tmp_path, good):
    bad = tmp_path / "cut.likeness"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ProjectError):
        load_project(bad)


def test_missing_member(tmp_path, good):
    bad = _rewrite(good, tmp_path / "bad.likeness", drop={"identity.npy"})
    with pytest.raises(ProjectError, match=r"identity code \(identity.npy\) is missing"):
        load_project(bad)
    bad = _rewrite(good, tmp_path / "bad2.likeness", drop={"project.json"})
    with pytest.raises(ProjectError, match="no project.json"):
        load_project(bad)


def test_bad_json(tmp_path, good):
    bad = _rewrite(good, tmp_path / "bad.likeness", replace={"project.json": b"{not json"})
    with pytest.raises(ProjectError, match="not valid JSON"):
        load_project(bad)


def test_wrong_shapes(tmp_path, good):
    bad = _rewrite(good, tmp_path / "bad.likeness", replace={"expression.npy": _npy(np.zeros(52, np.float32))})
    with pytest.raises(ProjectError, match=r"expression weights have shape \(52,\)"):
        load_project(bad)
    bad = _rewrite(good, tmp_path / "bad2.likeness", replace={"identity.npy": _npy(np.zeros((2, 3), np.float32))})
    with pytest.raises(ProjectError, match="identity code has shape"):
        load_project(bad)
    with pytest.raises(ProjectError, match="32 identity dimensions; this face model has 64"):
        load_project(good, identity_dim=64)


def test_pickled_array_is_refused(tmp_path, good):
    buf = io.BytesIO()
    np.save(buf, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    bad = _rewrite(good, tmp_path / "bad.likeness", replace={"identity.npy": buf.getvalue()})
    with pytest.raises(ProjectError, match="not a valid array"):
        load_project(bad)


def test_bad_texture(tmp_path, good):
    bad = _rewrite(good, tmp_path / "bad.likeness", replace={"textures/albedo.png": b"\x89PNG broken"})
    with pytest.raises(ProjectError, match="texture"):
        load_project(bad)


def test_newer_format_version(tmp_path, good):
    with zipfile.ZipFile(good) as zf:
        manifest = json.loads(zf.read("project.json"))
    manifest["format_version"] = FORMAT_VERSION + 1
    manifest["app_version"] = "9.0"
    bad = _rewrite(good, tmp_path / "new.likeness", replace={"project.json": json.dumps(manifest)})
    with pytest.raises(ProjectError, match="newer Likeness.*update"):
        load_project(bad)


def test_missing_file(tmp_path):
    with pytest.raises(ProjectError, match="does not exist"):
        load_project(tmp_path / "nope.likeness")


def test_avatar_events_and_dirty():
    a = Avatar(np.zeros(4))
    seen = []
    a.events.connect("expression", lambda av: seen.append("expression"))
    a.events.connect("dirty", lambda av: seen.append(("dirty", av.dirty)))
    a.set_weight("jawOpen", 0.5)
    a.set_weight("jawOpen", 0.5)  # no change, no event
    assert seen == ["expression", ("dirty", True)]
    with pytest.raises(ValueError, match="shape"):
        a.set_expression(np.zeros(5))
    with pytest.raises(ValueError, match="view mode"):
        a.set_view(mode="cartoon")
    assert a.weight("jawOpen") == 0.5
