"""Every CLI command, given a damaged project, photo, video or model file, prints one
`error: ...` line and exits 2, never a traceback (CLI rule in docs/ARCHITECTURE.md).

The cases run in one child interpreter through main.main (torch loads once); two also run as
their own processes, side by side with it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _damaged_files(d: Path) -> dict[str, Path]:
    from PIL import Image

    from core.avatar import Avatar
    from core.project import save_project

    rng = np.random.default_rng(0)
    junk = lambda n: rng.integers(0, 256, n, dtype=np.uint8).tobytes()  # noqa: E731
    good = save_project(Avatar(np.zeros(16, np.float32)), d / "good.likeness")
    raw = good.read_bytes()
    f = {"garbage.likeness": junk(3000), "truncated.likeness": raw[: len(raw) // 2],
         "garbage.jpg": b"\xff\xd8\xff\xe0" + junk(5000),
         "garbage.mp4": b"\x00\x00\x00\x18ftypmp42" + junk(20000),
         "garbage.pt": junk(4000), "garbage.npz": b"PK\x03\x04" + junk(4000),
         "garbage.task": junk(4000), "garbage.psd": b"8BPS\x00\x01" + junk(3000),
         "manifest.csv": b"input,texture_size\nphoto.jpg,1024\nother.jpg,300\n",
         "garbage.json": b'{"format": "likeness-clip", "version": 1, "fps": 25, "frames": 3' + junk(300)}
    out = {}
    for name, data in f.items():
        (d / name).write_bytes(data)
        out[name] = d / name
    # a zip project whose manifest has a field of the wrong type (issue 30's AttributeError)
    with zipfile.ZipFile(raw_copy := d / "badfield.likeness", "w") as zf, zipfile.ZipFile(good) as src:
        for m in src.namelist():
            data = src.read(m)
            if m == "project.json":
                data = data.replace(b'"arrays": {', b'"arrays": 1.5, "x": {', 1)
            zf.writestr(m, data)
    out["badfield.likeness"] = raw_copy
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(d / "noise.jpg")
    out["noise.jpg"] = d / "noise.jpg"
    np.savez(d / "fer.npz", images=rng.integers(0, 255, (4, 48, 48), dtype=np.uint8),
             labels=np.arange(4))                        # a valid FER2013-format npz
    out["fer.npz"] = d / "fer.npz"
    bad_pts = d / "badpts"
    bad_pts.mkdir()
    (bad_pts / "a.jpg").write_bytes(f["garbage.jpg"])
    (bad_pts / "a.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n")
    out["badpts"] = bad_pts
    bad_photo = d / "badphoto"
    bad_photo.mkdir()
    (bad_photo / "a.jpg").write_bytes(f["garbage.jpg"])
    pts = rng.uniform(10, 50, (68, 2))
    (bad_photo / "a.pts").write_text("version: 1\nn_points: 68\n{\n" +
                                     "".join(f"{x:.1f} {y:.1f}\n" for x, y in pts) + "}\n")
    out["badphoto"] = bad_photo
    return out


def _cases(f: dict[str, Path], d: Path) -> dict[str, list[str]]:
    o = str(d / "out")
    return {
        "render damaged project": ["render", "--avatar", str(f["garbage.likeness"]), "--out", o + ".png"],
        "render truncated project": ["render", "--avatar", str(f["truncated.likeness"]), "--out", o + ".png"],
        "render project with a mistyped field": ["render", "--avatar", str(f["badfield.likeness"]),
                                                 "--out", o + ".png"],
        "export damaged project": ["export", str(f["truncated.likeness"]), "--out", o + ".glb"],
        "fit damaged photo": ["fit", str(f["garbage.jpg"]), "--out", o + ".likeness"],
        "fit a video as photo": ["fit", str(f["garbage.mp4"]), "--out", o + ".likeness"],
        "fer damaged video": ["fer", str(f["garbage.mp4"]), "--csv", o + ".csv"],
        "fer damaged photo": ["fer", str(f["garbage.jpg"])],
        "fer damaged classifier": ["fer", str(f["noise.jpg"]), "--model", str(f["garbage.pt"])],
        "fer damaged landmarker": ["fer", str(f["noise.jpg"]), "--landmarker", str(f["garbage.task"])],
        "eval-fer damaged npz": ["eval-fer", "--npz", str(f["garbage.npz"])],
        "eval-fer damaged unknown npz": ["eval-fer", "--npz", str(f["fer.npz"]), "--unknown-npz", str(f["garbage.npz"])],
        "eval-detect a folder that is not a detection set": ["eval-detect", "--set", str(f["badpts"])],
        "fer one-stage damaged detector": ["fer", str(f["noise.jpg"]), "--engine", "one-stage", "--detector",
                                           str(f["garbage.pt"])],
        "eval-fer damaged model": ["eval-fer", "--npz", str(f["fer.npz"]), "--model", str(f["garbage.pt"])],
        "eval-face-model damaged model": ["eval-face-model", "--model", str(f["garbage.pt"])],
        "train-face-model damaged FaceKit": ["train-face-model", "--facekit", str(f["garbage.npz"]),
                                             "--work", str(d / "work"), "--out", o + ".pt"],
        "eval-fit damaged landmarks": ["eval-fit", "--faces", str(f["badpts"])],
        "eval-texture damaged photos": ["eval-texture", "--faces", str(f["badphoto"]),
                                        "--cache", str(d / "cache")],
        "eval-texture damaged model": ["eval-texture", "--faces", str(f["badphoto"]),
                                       "--model", str(f["garbage.npz"]), "--cache", str(d / "cache2")],
        "texture damaged project": ["texture", str(f["truncated.likeness"]), "--flatten", o + ".png"],
        "texture damaged layer image": ["texture", "default", "--add-layer", str(f["garbage.jpg"]),
                                        "--flatten", o + ".png"],
        "caption damaged video": ["caption", str(f["garbage.mp4"])],
        "caption damaged clip": ["caption", str(f["garbage.json"])],
        "eval-caption damaged references": ["eval-caption", "--refs", str(f["garbage.json"])],
        "synth-fer into a folder in use": ["synth-fer", "--n", "2", "--out", str(f["badpts"])],
        "batch manifest with a bad option": ["batch", "fit", str(f["manifest.csv"]), "--out", o + "_batch"],
        "texture damaged PSD": ["texture", "default", "--import-psd", str(f["garbage.psd"]),
                                "--flatten", o + ".png"],
        "track damaged video": ["track", str(f["garbage.mp4"]), "--out", o + ".json"],
        "export-clip damaged clip": ["export-clip", str(f["garbage.json"]), "--out", o + ".csv"],
        "export-clip damaged project": ["export-clip", str(f["truncated.likeness"]), "--out", o + ".mp4"],
        "generate damaged model": ["generate", "a long nose", "--model", str(f["garbage.pt"]),
                                   "--out", o + "_gen.likeness"],
        "edit damaged project": ["edit", str(f["truncated.likeness"]), "make the nose longer",
                                 "--out", o + "_edit.likeness"],
        "eval-generate damaged prompt suite": ["eval-generate", "--prompts", str(f["garbage.json"])],
        "listen damaged audio": ["listen", "--speaker-audio", str(f["garbage.mp4"]), "--out", o + ".mp4"],
        "listen damaged model": ["listen", "--speaker-audio", str(f["garbage.mp4"]), "--model",
                                 str(f["garbage.pt"]), "--out", o + ".mp4"],
        "eval-listen damaged model": ["eval-listen", "--model", str(f["garbage.pt"])],
    }


FILE_KEYS = ("garbage.likeness", "truncated.likeness", "badfield.likeness", "garbage.jpg",
             "garbage.mp4", "garbage.pt", "garbage.npz", "garbage.task", "garbage.psd", "garbage.json", "manifest.csv",
             "noise.jpg",
             "fer.npz", "badpts", "badphoto")
_CASES = _cases({k: Path(k) for k in FILE_KEYS}, Path("."))   # names and commands, for collection


# Runs the cases in one interpreter, as `python main.py ARGS` would (stderr captured; an escaping
# exception printed as a traceback, exit 1), so torch and the other heavy modules load once.
_RUNNER = r"""
import contextlib, io, json, sys, traceback
sys.path.insert(0, sys.argv[1])
import main
out = {}
for name, argv in json.loads(sys.argv[2]).items():
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = int(main.main(argv) or 0)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            traceback.print_exc()
            rc = 1
    out[name] = {"rc": rc, "stderr": err.getvalue()}
print("RESULTS " + json.dumps(out))
"""
# These also run as real processes (the true exit path; the first is issue 23's example).
SEPARATE = ("render damaged project", "fer damaged video")


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, tuple[int, str]]:
    d = tmp_path_factory.mktemp("cli_errors")
    cases = _cases(_damaged_files(d), d)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}

    def run(argv):
        return subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=400)

    jobs = [["-c", _RUNNER, str(ROOT), json.dumps(cases)]]
    jobs += [[str(ROOT / "main.py"), *cases[name]] for name in SEPARATE]
    with ThreadPoolExecutor(len(jobs)) as pool:
        batch, *single = pool.map(run, jobs)
    line = [ln for ln in batch.stdout.splitlines() if ln.startswith("RESULTS ")]
    assert line, batch.stderr[-3000:]
    done = {k: (v["rc"], v["stderr"]) for k, v in json.loads(line[-1][8:]).items()}
    done.update({f"{name} (own process)": (r.returncode, r.stderr) for name, r in zip(SEPARATE, single)})
    return done


def test_every_command_is_covered():
    from core.commands import _modules

    names = {m.NAME for m in _modules()}
    covered = {argv[0] for argv in _CASES.values()}
    assert names <= covered, f"commands without a damaged-input case: {sorted(names - covered)}"


@pytest.mark.parametrize("case", [*_CASES, *(f"{n} (own process)" for n in SEPARATE)])
def test_damaged_input_gives_one_error_line(results, case):
    rc, stderr = results[case]
    assert "Traceback" not in stderr, stderr[-2000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr[-2000:]
    assert rc == 2, (rc, stderr[-2000:])
    assert len(errors[0]) > len("error: ") + 10      # a sentence, not just a type name
