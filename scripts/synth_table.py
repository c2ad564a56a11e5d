"""The synthetic-data table (docs/SYNTH.md): does adding `synth-fer` faces to FER2013 training
help a classifier on FER2013 val?

    nohup nice -n 10 python scripts/synth_table.py --synth A/synth_fer.npz,B/synth_fer.npz \
        > .cache/synth_table/v2.log 2>&1 &
    python scripts/synth_table.py --report            # the markdown table from the finished runs

The schedule follows SynFER: real data is always used in full and synthetic data is *added*,
never swapped in for real faces. Every run that uses real data gets the same budget in epochs
of its real data (--epochs over its real subset, cosine with a one-epoch warm-up: the schedule
of the matching real-only run, step for step). A run "with synthetic" first pre-trains on
synthetic faces (extra steps, its own cosine schedule) and then fine-tunes from that network's
last weights (no selection on val) with exactly the real-only run's schedule:

- `syn1`: pre-training sees as many synthetic samples as one epoch of the full real set
  (28,709; the unique renders of --synth cycled, augmented as always), over --epochs passes;
- `syn3`: three real epochs' worth, which is the "synthetic only" run itself (its last weights).

Runs whose log says they finished are skipped; a killed run resumes (train_fer.py's checkpoints
in .cache/fer/st2_<name>_s<seed>/). Accuracy is the EMA network after the last epoch.
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
REAL_TRAIN = 28_709
# name: (fraction of FER2013 train, synthetic pre-training run or None, label)
RUNS = {
    "real": (1.0, None, "real (100%)"),
    "real_syn1": (1.0, "pre1", "real + 1x synthetic (pre-train, then real)"),
    "real_syn3": (1.0, "synth_only", "real + 3x synthetic (pre-train, then real)"),
    "synth_only": (0.0, None, "synthetic only (3x: 86,127 samples)"),
    "real25": (0.25, None, "25% real"),
    "real25_syn1": (0.25, "pre1", "25% real + 1x synthetic (pre-train, then real)"),
    "real10": (0.10, None, "10% real"),
    "real10_syn1": (0.10, "pre1", "10% real + 1x synthetic (pre-train, then real)"),
    "pre1": (0.0, None, "synthetic pre-training, 1x (28,709 samples)"),
}
SYNTH_SAMPLES = {"synth_only": 3 * REAL_TRAIN, "pre1": REAL_TRAIN}
ORDER = ["real", "pre1", "real_syn1", "synth_only", "real_syn3", "real25", "real25_syn1", "real10", "real10_syn1"]


def _run_dir(name: str, seed: int) -> Path:
    return ROOT / ".cache" / "fer" / f"st2_{name}_s{seed}"


def _log(name: str, seed: int) -> list[dict]:
    p = _run_dir(name, seed) / "log.jsonl"
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


def build_file(name: str, train: Path, synth: list[Path] | None, epochs: int) -> Path:
    """.cache/synth_table/data2/<name>.npz: the real subset (same faces in every run, fixed seed),
    or for a synthetic run its samples cycled so that `epochs` passes see SYNTH_SAMPLES of them."""
    frac = RUNS[name][0]
    out = CACHE / "data2" / f"{name}.npz"
    if out.exists():
        return out
    rng = np.random.default_rng(0)
    if frac > 0:
        real = np.load(train)
        keep = np.random.default_rng(1234).permutation(len(real["labels"]))[:round(frac * len(real["labels"]))]
        x, y = real["images"][keep], real["labels"][keep]
    else:
        if not synth:
            raise SystemExit(f"run {name} needs --synth (synth_fer.npz files from `main.py synth-fer`)")
        sets = [np.load(p) for p in synth]
        xs, ys = np.concatenate([d["images"] for d in sets]), np.concatenate([d["labels"] for d in sets])
        k = SYNTH_SAMPLES[name] // epochs
        idx = np.concatenate([rng.permutation(len(xs)) for _ in range(-(-k // len(xs)))])[:k]
        x, y = xs[idx], ys[idx]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez(tmp, images=x, labels=y.astype(np.int64))
    tmp.replace(out)
    return out


def train(name: str, seed: int, data: Path, epochs: int, width: int) -> None:
    pre = RUNS[name][1]
    cmd = [sys.executable, str(ROOT / "scripts" / "train_fer.py"), "--run", _run_dir(name, seed).name,
           "--train", str(data), "--epochs", str(epochs), "--width", str(width), "--threads", "1",
           "--ckpt-every", "100", "--seed", str(seed), "--bf16"]
    if pre is not None:
        cmd += ["--init-from", str(_run_dir(pre, seed) / "last.pt")]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def report(epochs: int, seeds: list[int]) -> str:
    head = ("| training data | real epochs (steps) | synthetic samples seen (steps) | "
            "FER2013 val acc, last epoch (per seed) | mean | train time |")
    rows = [head, "|---|---|---|---|---|---|"]
    for name in ORDER:
        if name == "pre1":
            continue
        frac, pre, label = RUNS[name]
        done = [(s, lg) for s in seeds if len(lg := _log(name, s)) >= epochs]
        real_steps = (round(frac * REAL_TRAIN) // 128) * epochs if frac else 0
        syn = SYNTH_SAMPLES.get(pre or name, 0)
        syn_steps = ((syn // epochs) // 128) * epochs if syn else 0
        real = f"{epochs} ({real_steps})" if frac else "0"
        syn_txt = f"{syn:,} ({syn_steps})" if syn else "0"
        if not done:
            rows.append(f"| {label} | {real} | {syn_txt} | (not run) | | |")
            continue
        accs = [lg[epochs - 1]["val_acc"] for _, lg in done]
        secs = [lg[epochs - 1]["train_seconds"] + (_log(pre, s)[epochs - 1]["train_seconds"] if pre else 0)
                for s, lg in done]
        per_seed = " / ".join(f"{100 * a:.1f}% (seed {s})" for a, (s, _) in zip(accs, done))
        rows.append(f"| {label} | {real} | {syn_txt} | {per_seed} | "
                    f"{100 * np.mean(accs):.1f}% | {np.mean(secs) / 60:.1f} min |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synth", default=None, help="synth_fer.npz files written by `main.py synth-fer`, comma-separated")
    ap.add_argument("--train", default=None, help="FER2013 train.npz (default ../shared/fer2013/train.npz)")
    ap.add_argument("--runs", default=",".join(ORDER), help="comma-separated, in order, from " + ", ".join(ORDER))
    ap.add_argument("--seeds", default="0", help="comma-separated seeds (each run once per seed)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs over each run's real (or synthetic) file")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--report", action="store_true", help="print the table of finished runs and exit")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.report:
        print(report(args.epochs, seeds))
        return
    train_npz = shared_path("fer2013/train.npz", args.train, "FER2013 train split")
    synth = [Path(p) for p in args.synth.split(",")] if args.synth else None
    for seed in seeds:
        for name in args.runs.split(","):
            if name not in RUNS:
                raise SystemExit(f"unknown run {name!r} (known: {', '.join(ORDER)})")
            if len(_log(name, seed)) >= args.epochs:
                print(f"{name} seed {seed}: done", flush=True)
                continue
            train(name, seed, build_file(name, train_npz, synth, args.epochs), args.epochs, args.width)
    print(report(args.epochs, seeds), flush=True)


if __name__ == "__main__":
    main()
