"""`eval-fer --unknown-npz`: AUROC and FPR at 95% TPR of the shipped unknown score on a small fixture."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from core.commands.eval_fer import fpr_at_tpr
from core.paths import REPO_ROOT, SHARED_DIR

VAL = SHARED_DIR / "fer2013" / "val.npz"


def _cli(*args):
    return subprocess.run([sys.executable, str(REPO_ROOT / "main.py"), *map(str, args)], capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=600)


def test_fpr_at_tpr_definition():
    known = np.arange(100, dtype=float)          # 95% of knowns have score <= 94.05
    assert fpr_at_tpr(known, np.array([10.0, 94.0, 95.0, 200.0])) == pytest.approx(0.5)
    assert fpr_at_tpr(known, known + 1000) == 0.0


@pytest.mark.skipif(not VAL.exists(), reason=f"FER2013 val split missing: {VAL}")
def test_unknown_npz_ranks_non_faces_above_faces(tmp_path):
    """Known: 60 real val faces. Unknown: 60 smooth textures with no face (labels absent): the
    shipped score must rank them above the faces, and the JSON must agree with the printed line."""
    with np.load(VAL) as d:
        rng = np.random.default_rng(0)
        idx = rng.choice(len(d["labels"]), 60, replace=False)
        np.savez(tmp_path / "known.npz", images=d["images"][idx], labels=d["labels"][idx])
    tex = [cv2.GaussianBlur(rng.integers(0, 255, (48, 48)).astype(np.uint8), (0, 0), float(s))
           for s in rng.uniform(1, 6, 60)]
    np.savez(tmp_path / "unknown.npz", images=np.stack(tex))
    r = _cli("eval-fer", "--npz", tmp_path / "known.npz", "--unknown-npz", tmp_path / "unknown.npz")
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["known"] == 60 and res["unknown"] == 60
    assert res["auroc"] >= 0.9 and res["fpr_at_95_tpr"] <= 0.5
    assert f"AUROC {res['auroc']:.4f}" in r.stdout
    # bad unknown file: one line, exit 2
    (tmp_path / "bad.npz").write_bytes(b"junk")
    r = _cli("eval-fer", "--npz", tmp_path / "known.npz", "--unknown-npz", tmp_path / "bad.npz")
    assert r.returncode == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr
