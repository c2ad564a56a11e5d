"""Batch work (issue 29): inputs and manifests, resume, failures listed, and the Ray paths:
a private local instance and an existing cluster (a second local head started here)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.batch.inputs import ManifestError, collect_items, read_manifest  # noqa: E402
from core.batch.jobs.fit import ADAPTER as FIT  # noqa: E402
from core.batch.results import ResultsError, ResultsLog, read_results  # noqa: E402

FIT_OPTIONS = {o.name: o for o in FIT.options}
DEFAULTS = {o.name: o.default for o in FIT.options}


def _faces68() -> Path:
    from core.paths import shared_path
    try:
        return Path(shared_path("faces68", None, "benchmark photos"))
    except Exception as exc:   # MissingDataError: say what is missing
        pytest.skip(str(exc))


def _main(args: list[str], timeout: float = 900, env: dict | None = None) -> tuple[int, str, str, dict | None]:
    """`python main.py ARGS` in its own session (killed as a group if it overruns)."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            env={**os.environ, **(env or {})})
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"main.py {' '.join(args)} ran over {timeout} s: {err[-2000:]}")
    js = [ln for ln in out.splitlines() if ln.startswith("{")]
    return proc.returncode, out, err, (json.loads(js[-1]) if js else None)


def _records(out: Path) -> list[dict]:
    return [json.loads(ln) for ln in (out / "manifest.jsonl").read_text().splitlines() if ln.strip()]


# --- inputs and manifests (no Ray) ---------------------------------------------------------------

def test_manifests_give_items_with_typed_options(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "list.csv").write_text("input,id,texture_size,neutral,export,_note\n"
                                       "sub/a.jpg,alpha,512,yes,glb,anything\n"
                                       "/abs/b.png,,,,,\n")
    (tmp_path / "list.jsonl").write_text('{"input": "c.jpg", "face": 2, "overlay": true}\n\n'
                                         '{"input": "d.jpg", "id": "d1", "texture-size": 2048}\n')
    rows = read_manifest(tmp_path / "list.csv", FIT_OPTIONS)
    assert [r["input"] for r in rows] == [str(tmp_path / "sub" / "a.jpg"), "/abs/b.png"]
    assert rows[0]["id"] == "alpha" and rows[1]["id"] is None
    assert rows[0]["options"] == {"texture_size": 512, "neutral": True, "export": "glb"}
    assert rows[1]["options"] == {}                              # empty cells: the batch's defaults
    rows = read_manifest(tmp_path / "list.jsonl", FIT_OPTIONS)
    assert rows[0]["options"] == {"face": 2, "overlay": True} and rows[0]["line"] == 1
    assert rows[1]["options"] == {"texture_size": 2048} and rows[1]["line"] == 3
    # batch-wide flags are the defaults; a manifest's cell overrides them for its item
    (tmp_path / "c.jpg").write_bytes(b"x")
    items, _ = collect_items([str(tmp_path / "list.jsonl")], FIT, {**DEFAULTS, "texture_size": 512})
    assert items[0].options["texture_size"] == 512 and items[0].options["face"] == 2
    assert items[1].options["texture_size"] == 2048 and items[1].id == "d1"


@pytest.mark.parametrize("text, words", [
    ("input,texture_size\na.jpg,1024\nb.jpg,300\n", ["line 3", "texture_size", "512, 1024, 2048"]),
    ("input,colour\na.jpg,red\n", ["line 2", "unknown option 'colour'", "texture_size"]),
    ("input,id\na.jpg,x\nb.jpg,x\n", ["line 3", "'x'", "line 2"]),
    ("photo,face\na.jpg,1\n", ["header", "'input'"]),
    ("input,face\na.jpg,1.5\n", ["line 2", "whole number"]),
    ("input,id\na.jpg,../../x\n", ["line 2", "id"]),
    ('input\n"a.jpg\n', ["malformed CSV"]),
    ("input\n", ["lists no items"]),
])
def test_bad_csv_manifest_names_line_and_reason(tmp_path, text, words):
    p = tmp_path / "m.csv"
    p.write_text(text)
    with pytest.raises(ManifestError) as e:
        read_manifest(p, FIT_OPTIONS)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


@pytest.mark.parametrize("text, words", [
    ('{"input": "a.jpg"}\n[1, 2]\n', ["line 2", "JSON object"]),
    ('{"input": "a.jpg"}\n{"input": \n', ["line 2", "not valid JSON"]),
    ('{"input": 5}\n', ["line 1", "'input'"]),
    ('{"input": "a.jpg", "neutral": "maybe"}\n', ["line 1", "true or false"]),
    ('{"input": "a.jpg", "face": NaN}\n', ["line 1", "NaN"]),
])
def test_bad_jsonl_manifest_names_line_and_reason(tmp_path, text, words):
    p = tmp_path / "m.jsonl"
    p.write_text(text)
    with pytest.raises(ManifestError) as e:
        read_manifest(p, FIT_OPTIONS)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_folders_and_globs_give_unique_names_and_stable_keys(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "x.jpg").write_bytes(b"x")
    (tmp_path / "a" / "notes.txt").write_text("n")
    items, notes = collect_items([str(tmp_path), str(tmp_path / "a" / "*.jpg")], FIT, DEFAULTS)
    assert sorted(it.id for it in items) == ["a__x", "b__x"]        # the glob's duplicate is dropped
    assert any("skipped 1" in n and ".txt" in n for n in notes)
    again, _ = collect_items([str(tmp_path)], FIT, DEFAULTS)
    assert [it.key for it in again] == [it.key for it in items]     # resume finds them again
    other, _ = collect_items([str(tmp_path)], FIT, {**DEFAULTS, "neutral": True})
    assert not {it.key for it in other} & {it.key for it in items}  # other options: other items
    # the same stem in two places named by a glob: a short hash keeps them apart
    items, _ = collect_items([str(tmp_path / "*" / "x.jpg")], FIT, DEFAULTS)
    assert len({it.id for it in items}) == 2
    with pytest.raises(FileNotFoundError):
        collect_items([str(tmp_path / "missing")], FIT, DEFAULTS)
    with pytest.raises(FileNotFoundError):
        collect_items([str(tmp_path / "*.png")], FIT, DEFAULTS)


def test_prompt_lists_give_text_items(tmp_path):
    """generate takes text: a .txt list (one prompt per line) or a manifest's input/prompt column."""
    from core.batch.jobs.generate import ADAPTER as GEN
    defaults = {o.name: o.default for o in GEN.options}
    (tmp_path / "prompts.txt").write_text("# my list\na round face, short hair\n\n  long   blond hair \n")
    (tmp_path / "more.jsonl").write_text('{"prompt": "a narrow nose", "seed": 7, "n": 2, "id": "nose"}\n')
    items, _ = collect_items([str(tmp_path / "prompts.txt"), str(tmp_path / "more.jsonl")], GEN, defaults)
    assert [it.input for it in items] == ["a round face, short hair", "long blond hair", "a narrow nose"]
    assert items[0].id.startswith("a_round_face_short_hair-") and items[2].id == "nose"
    assert items[2].options["seed"] == 7 and GEN.outputs(items[2]) == ["nose.likeness", "nose_2.likeness"]
    with pytest.raises(FileNotFoundError):          # a folder of photos is not a prompt list
        collect_items([str(tmp_path)], GEN, defaults)
    (tmp_path / "bad.csv").write_text("prompt,guidance\nsmile,25\n")
    with pytest.raises(ManifestError, match="guidance must be at most 20"):
        collect_items([str(tmp_path / "bad.csv")], GEN, defaults)


def test_results_manifest_survives_a_torn_line_and_names_damage(tmp_path):
    p = tmp_path / "manifest.jsonl"
    log = ResultsLog(p)
    for k in range(3):
        log.append({"key": f"k{k}", "id": f"i{k}", "status": "ok", "outputs": [], "attempt": 1})
    log.close()
    whole = p.read_bytes()
    p.write_bytes(whole + b'{"key": "k9", "id": "i9", "sta')          # killed mid-append
    records, torn = read_results(p)
    assert sorted(records) == ["k0", "k1", "k2"] and torn == 1
    log = ResultsLog(p)                                                # the next run cuts the tail off
    log.append({"key": "k9", "id": "i9", "status": "failed", "outputs": [], "error": "bad"})
    log.close()
    records, torn = read_results(p)
    assert sorted(records) == ["k0", "k1", "k2", "k9"] and torn == 0
    p.write_bytes(whole.replace(b'"status":"ok"', b'"status":"done"', 1))
    with pytest.raises(ResultsError, match="line 1"):
        read_results(p)


# --- on Ray ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory) -> tuple[Path, list[Path]]:
    """Two good photos (one listed in a CSV manifest with per-item options), a corrupt JPEG, a
    photo with no face and a text file."""
    faces = _faces68()
    d = tmp_path_factory.mktemp("batch_in")
    good = [faces / "100591971_1.jpg", faces / "1021890651_1.jpg"]
    shutil.copy(good[0], d / "good.jpg")
    (d / "corrupt.jpg").write_bytes(good[1].read_bytes()[:2500])
    yy, xx = np.mgrid[0:240, 0:320]
    from PIL import Image
    Image.fromarray(np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype(np.uint8)).save(d / "noface.png")
    (d / "readme.txt").write_text("not a photo")
    m = d.parent / (d.name + "_list.csv")
    m.write_text(f"input,id,neutral,texture_size\n{good[1]},listed,true,512\n")
    return d, [d, m]


@pytest.mark.shared
def test_batch_fit_lists_bad_inputs_and_resumes(mixed_folder, tmp_path):
    from core.project import load_project
    folder, inputs = mixed_folder
    out = tmp_path / "out"
    args = ["batch", "fit", *map(str, inputs), "--out", str(out), "--workers", "2"]
    rc, stdout, stderr, s = _main(args)
    assert s is not None, stderr[-3000:]
    assert rc == 1                                       # some items failed
    assert (s["ok"], s["failed"], s["errors"], s["total"]) == (2, 2, 0, 4), stdout
    assert (s["workers"], s["threads"]) == (2, max(1, (os.cpu_count() or 1) // 2))   # cores shared out
    assert "Traceback" not in stderr
    assert "skipped 1 file(s)" in stderr and "items/s" in stderr and "ETA" in stderr   # progress bar
    recs = {r["id"]: r for r in _records(out)}
    assert recs["corrupt"]["status"] == "failed" and "damaged or truncated" in recs["corrupt"]["error"]
    assert recs["noface"]["status"] == "failed" and "No face" in recs["noface"]["error"]
    assert "corrupt: " in stdout and "noface: " in stdout               # the summary lists them
    # the good ones are fitted: two different faces, the manifest's options applied to its item
    a, b = load_project(out / "good.likeness"), load_project(out / "listed.likeness")
    assert np.isfinite(a.identity).all() and np.abs(a.identity - b.identity).max() > 0.1
    assert np.abs(a.expression).max() > 0.05 and np.abs(b.expression).max() == 0.0   # neutral=true
    assert b.texture.shape[0] == 512 and a.texture.shape[0] == 1024
    for r in recs.values():
        assert set(r) >= {"key", "id", "input", "status", "outputs", "figures", "error", "seconds", "worker",
                          "attempt", "finished", "options"}
    assert recs["good"]["figures"]["faces"] == 1 and len(recs["good"]["figures"]["yaw_pitch_roll"]) == 3
    assert len({r["worker"] for r in recs.values()}) <= 2          # two long-lived workers took every item

    # a rerun does nothing (no Ray started): every item is done, the failures stay listed
    stamp = (out / "good.likeness").stat().st_mtime_ns
    rc, stdout, _, s = _main(args)
    assert rc == 1 and (s["done_before"], s["failed_before"], s["ok"] + s["failed"] + s["errors"]) == (4, 2, 0)
    assert len(_records(out)) == 4 and (out / "good.likeness").stat().st_mtime_ns == stamp

    # a crash cut the last record short, and one output of an intact record is gone: those two
    # items run again (the first as a new attempt, the second as attempt 2), nothing else
    lines = (out / "manifest.jsonl").read_bytes().splitlines(keepends=True)
    ok_lines = [i for i, ln in enumerate(lines) if b'"status":"ok"' in ln]
    lost, kept = json.loads(lines[ok_lines[-1]]), json.loads(lines[ok_lines[0]])
    keep = [ln for i, ln in enumerate(lines) if i != ok_lines[-1]]
    (out / "manifest.jsonl").write_bytes(b"".join(keep) + lines[ok_lines[-1]][:40])
    (out / kept["outputs"][0]).unlink()
    rc, stdout, stderr, s = _main(args[:-1] + ["1"])
    assert (s["done_before"], s["ok"], s["failed"]) == (2, 2, 0), stdout
    assert "cut short by a crash" in stderr
    recs = _records(out)
    assert len(recs) == 5 and {r["key"]: r["attempt"] for r in recs[-2:]} == {lost["key"]: 1, kept["key"]: 2}
    assert (out / kept["outputs"][0]).is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head(tmp_path):
    """A second local Ray head (`ray start --head --block`), stopped afterwards with its group."""
    gcs, client = _free_port(), _free_port()
    temp = Path(f"/tmp/rayt{os.getpid()}")       # Ray's socket paths must stay short
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(["ray", "start", "--head", "--block", "--port", str(gcs), "--ray-client-server-port",
                             str(client), "--num-cpus", "1", "--include-dashboard", "false", "--temp-dir",
                             str(temp), "--disable-usage-stats"], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "head.log", "w"), start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", client)) == 0:
                    break
            assert proc.poll() is None, (tmp_path / "head.log").read_text()[-2000:]
            time.sleep(0.5)
        else:
            pytest.fail("the Ray head did not open its client port")
        yield f"ray://127.0.0.1:{client}", proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)          # --block stops the head's processes on SIGTERM
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        time.sleep(2)
        left = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
        for pid in left:                             # the head's own group, nobody else's
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.shared
def test_batch_runs_on_an_existing_cluster(ray_head, mixed_folder, tmp_path):
    address, head = ray_head
    folder, _ = mixed_folder
    out = tmp_path / "fer"
    # --memory-mb below a worker's size: the worker is replaced after its items, the batch goes on
    rc, stdout, stderr, s = _main(["batch", "fer", str(folder / "good.jpg"), str(folder / "noface.png"),
                                   str(folder / "corrupt.jpg"), "--out", str(out), "--address", address,
                                   "--annotate", "--memory-mb", "150"], timeout=600)
    assert s is not None, stderr[-3000:]
    assert f"Ray cluster {address}" in stderr and (s["ok"], s["failed"], s["workers"]) == (1, 2, 1), stdout
    assert s["recycled"] >= 1 and s["peak_rss_mb"] > 150
    recs = {r["id"]: r for r in _records(out)}
    assert recs["noface"]["error"].startswith("no face found")
    rows = (out / "good.csv").read_text().splitlines()
    assert rows[0].startswith("frame,") and len(rows) == 2
    assert recs["good"]["figures"]["frames_with_face"] == 1 and (out / "good.png").stat().st_size > 10_000
    # the worker ran in the head's raylet, not in a Ray instance of the command's own
    raylet = subprocess.run(["pgrep", "-g", str(head.pid), "-f", "raylet"], capture_output=True, text=True)
    assert raylet.stdout.strip(), "the head is not running"
    # a wrong address is one error line
    rc, _, stderr, _ = _main(["batch", "fer", str(folder / "good.jpg"), "--out", str(tmp_path / "x"),
                              "--address", "127.0.0.1:1"], timeout=300)
    assert rc == 2 and stderr.strip().splitlines()[-1].startswith("error: cannot connect"), stderr[-2000:]
