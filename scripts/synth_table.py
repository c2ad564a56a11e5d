"""The synthetic-data table (docs/SYNTH.md): train a small FER classifier on mixtures of real
FER2013 and `synth-fer` faces with one fixed short schedule and measure each on FER2013 val.

    nohup nice -n 10 python scripts/synth_table.py --synth .cache/synth_table/synth/synth_fer.npz \
        > .cache/synth_table/table.log 2>&1 &
    python scripts/synth_table.py --report          # the markdown table from the finished runs

Every run trains scripts/train_fer.py (same network, augmentation, EMA and evaluation as the
shipped classifier) for the same number of steps: each run's training file holds exactly
STREAM faces (a quarter of a FER2013 training split), drawn from its mixture, so runs differ only
in what they see, never in how long they train. A real subset is the same faces in every run
that uses it (fixed seed). "k x synthetic" means k synthetic faces in the stream for each real
one; the synthetic faces are the unique renders of --synth, repeated where the stream needs
more. Runs whose log says they finished are skipped, a killed run resumes (train_fer.py's
checkpoints in .cache/fer/synth_<name>/).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.paths import shared_path

CACHE = ROOT / ".cache" / "synth_table"
STREAM = 7_168          # a quarter of a FER2013 training split: 8 runs fit one session on the shared CPU
# name: (fraction of FER2013 train, synthetic faces per real face; None = synthetic only)
RUNS = {
    "real10": (0.10, 0.0), "real25": (0.25, 0.0), "real": (1.0, 0.0),
    "synth_only": (0.0, None),
    "real10_syn1": (0.10, 1.0), "real25_syn1": (0.25, 1.0),
    "real_syn1": (1.0, 1.0), "real_syn3": (1.0, 3.0),
}
LABELS = {"real": "real (100%)", "real25": "25% real", "real10": "10% real", "synth_only": "synthetic only",
          "real_syn1": "real + 1x synthetic", "real_syn3": "real + 3x synthetic",
          "real25_syn1": "25% real + 1x synthetic", "real10_syn1": "10% real + 1x synthetic"}


def _fill(idx: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k indices cycling through `idx` (every face once before any twice), shuffled."""
    reps = np.concatenate([rng.permutation(idx) for _ in range(-(-k // max(len(idx), 1)))])[:k]
    return rng.permutation(reps)


def build_stream(name: str, train: Path, synth: list[Path] | None, seed: int = 0) -> Path:
    """Write .cache/synth_table/data/<name>.npz (STREAM faces of the run's mixture)."""
    frac, ratio = RUNS[name]
    out = CACHE / "data" / f"{name}.npz"
    if out.exists():
        return out
    rng = np.random.default_rng(seed)
    real = np.load(train)
    xr, yr = real["images"], real["labels"]
    parts_x, parts_y = [], []
    n_syn = 0
    if ratio is None or ratio > 0:
        if not synth:
            raise SystemExit(f"run {name} needs --synth (a synth_fer.npz from `main.py synth-fer`)")
        sets = [np.load(p) for p in synth]
        xs, ys = np.concatenate([d["images"] for d in sets]), np.concatenate([d["labels"] for d in sets])
        n_syn = STREAM if ratio is None else round(STREAM * ratio / (1 + ratio))
        i = _fill(np.arange(len(xs)), n_syn, rng)
        parts_x.append(xs[i]); parts_y.append(ys[i])
    if ratio is not None:
        keep = np.random.default_rng(1234).permutation(len(xr))[:round(frac * len(xr))]  # same subset every run
        i = _fill(keep, STREAM - n_syn, rng)
        parts_x.append(xr[i]); parts_y.append(yr[i])
    x, y = np.concatenate(parts_x), np.concatenate(parts_y)
    order = rng.permutation(len(x))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez(tmp, images=x[order], labels=y[order].astype(np.int64))
    tmp.replace(out)
    return out


def _log(name: str) -> list[dict]:
    p = ROOT / ".cache" / "fer" / f"synth_{name}" / "log.jsonl"
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


def report(epochs: int, synth_unique: int) -> str:
    """The table of finished runs. Each run's file is read `epochs` times, so a run sees at most
    STREAM distinct faces: the columns say how many of each kind it holds and how many differ."""
    rows = [("| training data | real faces in its file (distinct) | synthetic faces in its file (distinct) | "
             "val acc (last epoch) | best epoch's val acc | train time |"), "|---|---|---|---|---|---|"]
    for name in ("real", "real25", "real10", "synth_only", "real_syn1", "real_syn3", "real25_syn1", "real10_syn1"):
        log = _log(name)
        frac, ratio = RUNS[name]
        n_syn = STREAM if ratio is None else round(STREAM * ratio / (1 + ratio))
        n_real = STREAM - n_syn
        pool = round(frac * 28_709)
        real = f"{n_real} ({min(n_real, pool)} of {pool})" if n_real else "0"
        syn = f"{n_syn} ({min(n_syn, synth_unique)})" if n_syn else "0"
        if len(log) < epochs:
            rows.append(f"| {LABELS[name]} | {real} | {syn} | (not run) | | |")
            continue
        last = log[epochs - 1]
        best = max(r["val_acc"] for r in log[:epochs])
        rows.append(f"| {LABELS[name]} | {real} | {syn} | {100 * last['val_acc']:.1f}% | {100 * best:.1f}% | "
                    f"{last['train_seconds'] / 60:.1f} min |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synth", default=None, help="synth_fer.npz written by `main.py synth-fer` (comma-separated: "
                                                  "several runs pooled)")
    ap.add_argument("--train", default=None, help="FER2013 train.npz (default ../shared/fer2013/train.npz)")
    ap.add_argument("--runs", default=",".join(RUNS), help="comma-separated subset of " + ", ".join(RUNS))
    ap.add_argument("--epochs", type=int, default=4, help="passes over a STREAM-face training file")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--report", action="store_true", help="print the table of finished runs and exit")
    args = ap.parse_args()
    synth_unique = sum(len(np.load(p)["labels"]) for p in args.synth.split(",")) if args.synth else 0
    if args.report:
        print(report(args.epochs, synth_unique))
        return
    train = shared_path("fer2013/train.npz", args.train, "FER2013 train split")
    for name in args.runs.split(","):
        if name not in RUNS:
            raise SystemExit(f"unknown run {name!r} (known: {', '.join(RUNS)})")
        if len(_log(name)) >= args.epochs:
            print(f"{name}: done", flush=True)
            continue
        data = build_stream(name, train, [Path(p) for p in args.synth.split(",")] if args.synth else None)
        cmd = [sys.executable, str(ROOT / "scripts" / "train_fer.py"), "--run", f"synth_{name}", "--train", str(data),
               "--epochs", str(args.epochs), "--width", str(args.width), "--threads", "1", "--ckpt-every", "100"]
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    print(report(args.epochs, synth_unique), flush=True)


if __name__ == "__main__":
    main()
