"""Synthetic expression faces (core.synth, `main.py synth-fer`): every render is labelled, boxed
and has its action units; prototypes read as their expression to the shipped classifier."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def person():
    from core.appearance import shared_model
    from core.facemodel import FaceModel
    from core.render import Renderer, headless_context
    from core.synth.faces import random_identity
    from core.synth.render import PersonRenderer

    model, app = FaceModel.load(), shared_model()
    rng = np.random.default_rng(5)
    r = Renderer(headless_context())
    yield PersonRenderer(model, app, random_identity(model, app, rng), r)
    r.release()


def test_a_shot_has_its_face_box_landmarks_crop_and_action_units(person):
    rng = np.random.default_rng(0)
    f = person.shot("happy", rng)
    assert f.image.shape == (256, 256, 3) and f.crop.shape == (48, 48)
    x, y, w, h = f.box
    lm = f.landmarks68
    assert (lm[:, 0] >= x - 1).all() and (lm[:, 0] <= x + w + 1).all()
    assert (lm[:, 1] >= y - 1).all() and (lm[:, 1] <= y + h + 1).all()
    assert 0.25 * 256 < w < 0.9 * 256                       # the face fills a good part of the picture
    assert f.aus["AU12"] > 0.5 and f.aus["AU6"] > 0.4       # a smile is AU6 + AU12
    assert f.aus["AU4"] < 0.1
    # the face is drawn where its landmarks are: skin-coloured pixels around the nose tip
    nose = lm[30].astype(int)
    patch = f.image[nose[1] - 3:nose[1] + 4, nose[0] - 3:nose[0] + 4].reshape(-1, 3).astype(float)
    assert patch[:, 0].mean() > patch[:, 2].mean() - 5       # skin: red at least as strong as blue


TEST_PEOPLE = (11, 12, 13)      # identity seeds; scripts/calibrate_synth_prototypes.py uses 1000+
SHOTS = 8


@pytest.fixture(scope="module")
def readings():
    """The shipped classifier's top class for SHOTS random shots (pose, light, background, blur,
    intensity, asymmetry) of each class for each test person: {label: (N,) class indices}."""
    from core.appearance import shared_model
    from core.facemodel import FaceModel
    from core.fer.classifier import ExpressionClassifier
    from core.fer.model import FER_CLASSES
    from core.render import Renderer, headless_context
    from core.synth.faces import random_identity
    from core.synth.render import PersonRenderer

    model, app = FaceModel.load(), shared_model()
    r = Renderer(headless_context())
    crops: dict[str, list] = {c: [] for c in FER_CLASSES}
    try:
        for seed in TEST_PEOPLE:
            p = PersonRenderer(model, app, random_identity(model, app, np.random.default_rng(seed)), r)
            rng = np.random.default_rng(seed + 100)
            for c in FER_CLASSES:
                crops[c] += [p.shot(c, rng).crop for _ in range(SHOTS)]
    finally:
        r.release()
    clf = ExpressionClassifier()
    return {c: clf.predict(np.stack(v)).probs.argmax(1) for c, v in crops.items()}


# Measured on these people and not yet at 80% (docs/SYNTH.md): the test still runs and reports
# its figure; it fails the suite once it passes (strict), so the marker cannot outlive the fix.
NOT_YET = {"disgust": "58% (the classifier reads angry 7, fear 2, happy 1)",
           "fear": "75% (neutral 3, surprise 2, happy 1)"}


@pytest.mark.parametrize("label", [pytest.param(c, marks=pytest.mark.xfail(reason=NOT_YET[c], strict=True))
                                   if c in NOT_YET else c
                                   for c in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")])
def test_prototype_renders_read_as_their_expression(readings, label):
    """Every render counts (none is chosen by the classifier): 3 people x 8 shots a class."""
    from core.fer.model import FER_CLASSES

    pred = readings[label]
    rate = float((pred == FER_CLASSES.index(label)).mean())
    read = {FER_CLASSES[i]: int((pred == i).sum()) for i in np.unique(pred)}
    assert rate >= 0.8, f"{label}: {rate:.0%} read as intended; the classifier read {read}"


def test_synth_fer_writes_labels_boxes_and_aus_for_every_image(tmp_path):
    out = tmp_path / "synth"
    r = subprocess.run([sys.executable, str(ROOT / "main.py"), "synth-fer", "--n", "14", "--out", str(out),
                        "--seed", "3", "--real", str(tmp_path / "none")],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["faces"] == 14 and report["kept"] + report["dropped"] == 14
    rows = list(csv.DictReader(open(out / "labels.csv")))
    assert len(rows) == 14 and {row["label"] for row in rows} == {"angry", "disgust", "fear", "happy", "sad",
                                                                  "surprise", "neutral"}
    for row in rows:
        assert (out / "images" / f"{row['file']}.jpg").is_file() and (out / "crops" / f"{row['file']}.png").is_file()
        assert float(row["box_w"]) > 20 and float(row["box_h"]) > 20
        assert all(0.0 <= float(row[a]) <= 1.0 for a in ("AU1", "AU4", "AU12", "AU26"))
    data = np.load(out / "synth_fer.npz")
    assert data["images"].shape == (report["kept"], 48, 48) and len(data["labels"]) == report["kept"]
    # a second run into the same folder is refused, nothing overwritten
    r2 = subprocess.run([sys.executable, str(ROOT / "main.py"), "synth-fer", "--n", "2", "--out", str(out)],
                        capture_output=True, text=True, timeout=300)
    assert r2.returncode == 2 and r2.stderr.strip().splitlines()[-1].startswith("error:")
