"""Text to avatar (issue 25) with the shipped model: prompt reading, determinism, the prior for
an empty prompt, guidance measured on the generated meshes, editing by text, the CLI, and the
Generate panel off the GUI thread with progress and cancel."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.generate.attributes import INDEX
from core.generate.reading import MAX_PROMPT_CHARS, read_prompt

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "resources" / "models" / "generate.pt"
needs_model = pytest.mark.skipif(not MODEL.exists(), reason="resources/models/generate.pt not trained yet")


@pytest.fixture(scope="module")
def gen():
    if not MODEL.exists():
        pytest.skip("resources/models/generate.pt not trained yet")
    from core.generate.generator import shared_generator
    return shared_generator()


def test_reading_reports_used_and_ungrounded_words():
    r = read_prompt("an old woman with a very long nose, thin lips and blue eyes, smiling")
    assert r.targets["nose_length"] > 1.5 and r.targets["lip_thickness"] < 0
    assert r.targets["eye_blueness"] > 0 and r.expression == "happy"
    why = dict(r.ungrounded)
    assert why["old"].startswith("age") and why["woman"].startswith("gender")
    assert "nose_length" in r.summary() and "'old' (age is not modelled)" in r.summary()
    # degree words scale the target, negation flips presence
    assert read_prompt("a slightly wide nose").targets["nose_width"] < read_prompt("a wide nose").targets["nose_width"] \
        < read_prompt("an extremely wide nose").targets["nose_width"]
    assert read_prompt("no freckles").targets["freckles"] < 0 < read_prompt("freckles").targets["freckles"]
    # comparatives are changes (for editing)
    assert read_prompt("make the nose longer").relative == {"nose_length": pytest.approx(1.1)}


def test_reading_of_nonsense_other_language_and_huge_prompts():
    for text in ("glorp blarf zibble", "une femme aux cheveux longs et au nez fin"):
        r = read_prompt(text)
        assert r.empty and r.ungrounded and all(w in text for w, _ in r.ungrounded)
        assert "not understood" in r.summary()
    long = "a wide nose " * 1000
    r = read_prompt(long)
    assert len(long) > 10_000 - 100 and r.notices and str(MAX_PROMPT_CHARS) in r.notices[0]
    assert r.targets["nose_width"] > 0
    assert read_prompt("").empty and read_prompt("   ").empty


@needs_model
def test_fixed_seed_same_avatar_and_seeds_differ(gen):
    a = gen.generate("a long narrow nose and full lips", n=2, seed=7)
    b = gen.generate("a long narrow nose and full lips", n=2, seed=7)
    c = gen.generate("a long narrow nose and full lips", n=2, seed=8)
    assert np.array_equal(a[0].identity, b[0].identity) and np.array_equal(a[1].appearance, b[1].appearance)
    assert a[0].hair == b[0].hair and a[0].eyes == b[0].eyes
    assert not np.allclose(a[0].identity, c[0].identity)
    assert not np.allclose(a[0].identity, a[1].identity)


@needs_model
def test_empty_prompt_samples_the_prior(gen):
    cands = gen.generate("", n=8, seed=3)
    ict = np.stack([c.ict for c in cands]).astype(np.float64)
    sq = (ict ** 2).sum(1)
    assert np.all(sq < 135.8)                       # inside the prior's 99th percentile
    pair = [np.linalg.norm(ict[i] - ict[j]) for i in range(8) for j in range(i + 1, 8)]
    assert min(pair) > 1.0                          # distinct faces, not one mean face
    assert cands[0].reading.empty and "prior" in cands[0].reading.summary()
    # nonsense, another language and a 10,000-character prompt still give avatars, and say why
    for text in ("glorp blarf zibble", "une femme aux cheveux longs", "a wide nose " * 1000):
        c = gen.generate(text, n=1, seed=1)[0]
        assert c.identity.shape == (100,) and np.isfinite(c.identity).all()
        assert c.reading.ungrounded or c.reading.notices
    assert "characters" in gen.generate("a wide nose " * 1000, n=1)[0].reading.summary()


@needs_model
def test_guidance_changes_how_well_the_prompt_is_followed(gen):
    z = {}
    for g in (0.0, 5.0):
        cands = gen.generate("a very wide nose and a very long face", n=8, seed=11, guidance=g)
        zz = gen.candidate_z(cands)
        z[g] = zz[:, INDEX["nose_width"]].mean() + zz[:, INDEX["face_length"]].mean()
    assert z[5.0] > z[0.0] + 1.0, z


@needs_model
def test_negative_prompt_pushes_away(gen):
    plain = gen.candidate_z(gen.generate("", n=8, seed=5, guidance=4.0))
    neg = gen.candidate_z(gen.generate("", n=8, seed=5, guidance=4.0, negative="big ears"))
    assert neg[:, INDEX["ears"]].mean() < plain[:, INDEX["ears"]].mean() - 0.3


@needs_model
def test_expression_words_and_settings(gen):
    c = gen.generate("a smiling face with long red hair in a ponytail", n=1, seed=2)[0]
    from core.expressions import INDEX as EX
    assert c.expression[EX["mouthSmile_L"]] > 0.5
    assert c.hair.style == "tied"
    avatar = c.to_avatar()
    assert avatar.appearance is not None and avatar.identity.shape == (100,)


@needs_model
def test_edit_moves_the_targeted_attribute_and_keeps_the_rest(gen):
    base = gen.generate("", n=1, seed=21)[0].to_avatar()
    z0 = gen.candidate_z([gen.generate("", n=1, seed=21)[0]])[0]
    out = gen.edit(base, "make the nose longer", strength=0.6, seed=1)
    z1 = gen.candidate_z([out])[0]
    d = z1 - z0
    assert d[INDEX["nose_length"]] > 0.3
    # hair, iris and the texture code are untouched by a geometry edit
    assert out.hair == base.hair and out.eyes == base.eyes
    assert np.allclose(out.appearance, base.appearance, atol=1e-4)
    with pytest.raises(ValueError):
        gen.edit(base, "glorp", strength=0.5)
    same = gen.edit(base, "make the nose longer", strength=0.0)
    assert np.allclose(same.identity, base.identity, atol=1e-4)


@needs_model
def test_named_hair_colour_is_followed_for_any_identity(gen):
    """Stage 2 given an identity ignored "silver hair" for about a quarter of identities, and a
    bald text-free style hid a named colour: both fixed (the colour from the text alone, on hair)."""
    for prompt in ("silver hair, a short nose and a wide face", "white hair"):
        cands = gen.generate(prompt, n=4, seed=0)
        assert all(c.hair.style != "bald" and c.hair.grey > 0.5 for c in cands), prompt
        assert (gen.candidate_z(cands)[:, INDEX["grey_hair"]] > 1.0).all()
    dark = gen.candidate_z(gen.generate("black hair, a short nose and a wide face", n=4, seed=0))
    assert (dark[:, INDEX["hair_lightness"]] < 0).all()


@needs_model
def test_appearance_codes_stay_inside_the_prior_and_keep_the_prompt(gen):
    from core.generate.generator import appearance_p99
    prompt = "pale skin and thick dark eyebrows"
    try:
        gen.appearance_guard = False
        raw = gen.generate(prompt, n=4, seed=0)
    finally:
        gen.appearance_guard = True
    cands = gen.generate(prompt, n=4, seed=0)

    def sq(cs):
        return (np.stack([c.appearance for c in cs]).astype(np.float64) ** 2).sum(1)
    p99 = appearance_p99(len(cands[0].appearance))
    assert (sq(raw) > p99).any() and (sq(cands) <= p99).all()
    z = gen.candidate_z(cands)
    assert all((z[:, INDEX[a]] > 0).all() for a in ("skin_tone", "brow_thickness", "brow_darkness"))


@needs_model
def test_cli_generate_and_edit(tmp_path):
    out = tmp_path / "a.likeness"
    r = subprocess.run([sys.executable, "main.py", "generate", "a very long face, black hair", "--out", str(out),
                        "--n", "2", "--seed", "4"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.exists() and (tmp_path / "a_2.likeness").exists()
    assert "face_length" in r.stdout
    b = tmp_path / "b.likeness"
    r = subprocess.run([sys.executable, "main.py", "edit", str(out), "fuller lips", "--out", str(b),
                        "--strength", "0.5"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    from core.project import load_project
    a0, a1 = load_project(out), load_project(b)
    assert np.allclose(a0.appearance, a1.appearance) and not np.allclose(a0.identity, a1.identity)
    r = subprocess.run([sys.executable, "main.py", "generate", "x", "--out", str(tmp_path / "c.likeness"),
                        "--n", "9"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr


class _SlowGenerator:
    """The shipped generator with every sampler step slowed, to cancel in the middle."""

    def __init__(self, real, delay: float) -> None:
        self.real, self.delay, self.threads = real, delay, []

    def generate(self, *args, callback=None, **kw):
        self.threads.append(threading.get_ident())

        def slow(i, n):
            time.sleep(self.delay)
            if callback:
                callback(i, n)
        return self.real.generate(*args, callback=slow, **kw)


@needs_model
def test_generate_panel_off_the_gui_thread_with_progress_and_cancel(qtbot, gen):
    from app.panels.generate_panel import GeneratePanel
    from app.workers import TaskRunner
    from core.avatar import Avatar

    slow = _SlowGenerator(gen, 0.0)
    runner = TaskRunner()
    panel = GeneratePanel(Avatar(np.zeros(100, np.float32)), runner, generator_factory=lambda: slow,
                          render_thumbnails=True)
    qtbot.addWidget(panel)
    panel.prompt.setText("a wide nose, blue eyes")
    panel.count.setValue(2)
    progress = []
    panel.generate()
    panel.task.signals.progress.connect(lambda f, s: progress.append(f))
    qtbot.waitUntil(lambda: len(panel.candidates) == 2, timeout=60_000)
    assert slow.threads and slow.threads[0] != threading.get_ident()
    assert panel.results.count() == 2 and "nose_width" in panel.reading_label.text()
    qtbot.waitUntil(lambda: not panel.busy, timeout=120_000)   # thumbnails rendered
    icon = panel.results.item(0).icon().pixmap(64, 64).toImage()
    assert icon.pixelColor(32, 32) != icon.pixelColor(1, 1)    # a face, not the grey placeholder
    picked = []
    panel.picked.connect(picked.append)
    panel.results.setCurrentRow(1)
    panel.use_selected()
    assert picked and np.allclose(picked[0].identity, panel.candidates[1].identity)

    # cancel in the middle of sampling
    slow.delay = 0.3
    cancelled = []
    panel.generate()
    panel.task.signals.cancelled.connect(lambda: cancelled.append(True))
    qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=30_000)
    panel.cancel()
    qtbot.waitUntil(lambda: not panel.busy, timeout=30_000)
    assert cancelled and panel.candidates == []
    assert panel.generate_button.isEnabled()


@needs_model
def test_window_pick_goes_through_the_unsaved_prompt_and_edit_applies(qtbot, face_model, gen, monkeypatch):
    """Window > Generate: picking a candidate asks about unsaved changes (Cancel keeps the
    document, Discard replaces it, the mesh is rebuilt); an edit changes the document's codes."""
    from PySide6.QtWidgets import QMessageBox

    from app.main_window import MainWindow

    w = MainWindow(face_model)
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.mesh_ready, timeout=120_000):
        w.show()
    panel = w.generate_panel
    panel.render_thumbnails = False
    panel.prompt.setText("a very long face, a wide nose")
    panel.count.setValue(2)
    panel.generate()
    qtbot.waitUntil(lambda: len(panel.candidates) == 2 and not panel.busy, timeout=60_000)
    w.avatar.set_weight("jawOpen", 0.5)                 # unsaved change
    before = w.avatar.identity
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: QMessageBox.Cancel)
    panel.results.setCurrentRow(0)
    panel.use_selected()
    assert np.array_equal(w.avatar.identity, before) and w.avatar.weight("jawOpen") == pytest.approx(0.5)
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: QMessageBox.Discard)
    with qtbot.waitSignal(w.session.mesh_changed, timeout=120_000):
        panel.use_selected()
    assert np.allclose(w.avatar.identity, panel.candidates[0].identity)
    hair = panel.candidates[0].hair
    assert w.avatar.hair.style == hair.style and w.avatar.hair.length == pytest.approx(hair.length, abs=0.01)
    assert w.path is None
    # edit by text: the nose gets longer, the texture code is kept
    app_before = w.avatar.appearance
    z0 = gen.scale.z(gen.measure(w.avatar.identity, w.avatar.appearance, w.avatar.hair, w.avatar.eyes)[None])[0]
    panel.edit_text.setText("make the nose longer")
    panel.apply_edit()
    qtbot.waitUntil(lambda: not panel.busy, timeout=60_000)
    z1 = gen.scale.z(gen.measure(w.avatar.identity, w.avatar.appearance, w.avatar.hair, w.avatar.eyes)[None])[0]
    assert z1[INDEX["nose_length"]] > z0[INDEX["nose_length"]] + 0.2
    assert np.allclose(w.avatar.appearance, app_before, atol=1e-4) and w.avatar.dirty
    w.avatar.set_dirty(False)
    w.close()
    w.runner.wait(30_000)


def test_r_precision_definition():
    """Attribute R-precision: an avatar that shows exactly its request is found; one avatar for
    every prompt scores chance; a second wording of the same request is not a wrong answer;
    the validation suite (for choosing settings) shares no prompt or request with the test suite."""
    from core.generate.evaluate import SUITE, load_suite, r_precision
    suite = load_suite()
    rng = np.random.default_rng(0)
    z_of = {}
    for p in suite:
        z = 0.3 * rng.standard_normal((2, len(INDEX)))
        for a, s in p.labels.items():
            z[:, INDEX[a]] = 2.0 * s
        z_of[p.text] = z
    r = r_precision(z_of, suite, 2)
    assert r["r_precision_pool"] == 32 and r["r_precision_prompts"] >= 32
    assert r["r_precision"] > 0.95
    same = rng.standard_normal((2, len(INDEX)))
    chance = r_precision({p.text: same for p in suite}, suite, 2)
    assert abs(chance["r_precision"] - 1 / 32) < 0.01
    # two wordings of one request: the distinct-request pools never hold both
    reqs = [frozenset(p.labels.items()) for p in suite if len(p.labels) >= 2]
    assert len(set(reqs)) < len(reqs) and r["r_precision_prompts"] == len(set(reqs))
    val = load_suite(SUITE.with_name("prompts_val.tsv"))
    test_texts = {p.text for p in suite}
    test_reqs = set(reqs)
    assert not any(p.text in test_texts for p in val)
    assert not any(frozenset(p.labels.items()) in test_reqs for p in val if len(p.labels) >= 2)
