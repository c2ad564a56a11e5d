"""Paint carries over (issue 24's render-level tests): a mark painted through the 3D brush at a
landmark on one identity shows at that landmark on ten other identities and the seven
expression presets (<= 3 px at 512x512); symmetric painting puts the mirrored mark at the
mirrored landmark; a stroke across a UV seam shows no gap or line in the render.

The measurements run once, in a fresh interpreter (tests/paint_transfer_measure.py): late in
the full suite this process's shared EGL context has rasterised UV layouts wrongly (see
test_paint.test_symmetry_on_the_face_models_uv_layout)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TOLERANCE_PX = 3.0


@pytest.fixture(scope="module")
def measured() -> dict:
    script = Path(__file__).resolve().parent / "paint_transfer_measure.py"
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_a_mark_at_a_landmark_follows_it_across_identities_and_expressions(measured):
    cases = measured["transfer"]
    assert sum(c.startswith("identity") for c in cases) == 10 and len(cases) == 17
    worst = {case: max(errs) for case, errs in cases.items()}
    assert max(worst.values()) <= TOLERANCE_PX, worst


def test_symmetric_paint_lands_on_the_mirrored_landmarks(measured):
    assert max(measured["symmetry"]) <= TOLERANCE_PX, measured["symmetry"]


def test_a_stroke_across_a_uv_seam_leaves_no_gap_or_line(measured):
    seam = measured["seam"]
    assert seam["islands"] >= 2, seam            # the stroke did cross from one island to another
    # every pixel on the stroke's centre line is the paint's green, near and far (mipmapped)
    assert min(seam["lowest_green"].values()) > 60, seam
