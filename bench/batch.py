"""Batch fitting benchmark (issue 29). Prints figures, then one JSON line.

    python bench/batch.py [--faces ../shared/faces68] [--photos 100] [--workers 2] [--skip-resume]

1. Sequential: one process fits every photo in turn (the batch's own fit adapter: models load
   once, the library's default threads), timed from process start to exit.
2. Batch: `python main.py batch fit FOLDER --out DIR --workers N` (local Ray), timed the same way.
   Throughput ratio = sequential wall / batch wall (both include start-up). Overhead per item:
   (a) dispatch: the idle gap on a worker between one item's end and the next item's start
   (worker clock, from the manifest's spans), and (b) the conservative figure
   (workers x processing time - time inside items) / items, which also counts the idle tail.
3. Crash and resume: the same batch started in a new session and killed (SIGKILL, the driver
   and its local Ray together) once half the photos are recorded, then rerun to the end:
   no finished item may run again.
The machine is shared: the load average and the machine's busy cores are printed per section.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGETS = {"speedup": 1.7, "overhead_ms": 50.0}


def _cpu_jiffies() -> tuple[int, int]:
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:]]
    idle = vals[3] + vals[4]
    return sum(vals) - idle, sum(vals)


class Section:
    """Wall time, load average and how many cores the whole machine kept busy."""

    def __enter__(self):
        self.load0 = os.getloadavg()
        self.j0 = _cpu_jiffies()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        b1, t1 = _cpu_jiffies()
        self.busy_cores = (b1 - self.j0[0]) / max(1, t1 - self.j0[1]) * (os.cpu_count() or 1)
        self.load1 = os.getloadavg()
        return False

    def figures(self) -> dict:
        return {"wall_s": round(self.wall, 2), "load_start": round(self.load0[0], 2),
                "load_end": round(self.load1[0], 2), "busy_cores": round(self.busy_cores, 2)}


def sequential_worker(listing: str, out_dir: str) -> None:
    """The baseline process: the fit adapter over every photo, one after another."""
    from core.batch.inputs import collect_items
    from core.batch.jobs.fit import ADAPTER
    photos = Path(listing).read_text().split("\n")
    items, _ = collect_items([p for p in photos if p], ADAPTER, {o.name: o.default for o in ADAPTER.options})
    import torch
    t0 = time.perf_counter()
    state = ADAPTER.load(torch.get_num_threads(), {})
    load_s = time.perf_counter() - t0
    ok = failed = 0
    for it in items:
        try:
            ADAPTER.process(state, it, Path(out_dir))
            ok += 1
        except Exception as exc:   # the batch counts these as failed too
            failed += 1
            print(f"failed {it.id}: {exc}", file=sys.stderr)
    print(json.dumps({"ok": ok, "failed": failed, "load_s": round(load_s, 2),
                      "items_s": round(time.perf_counter() - t0 - load_s, 2)}))


def run_batch(folder: Path, out: Path, workers: int, timeout: float) -> tuple[dict, str]:
    cmd = [sys.executable, str(ROOT / "main.py"), "batch", "fit", str(folder), "--out", str(out),
           "--workers", str(workers), "--log-every", "30"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"batch failed (exit {r.returncode}): {r.stderr[-2000:]}")
    return json.loads(lines[-1]), r.stderr


def manifest_records(out: Path) -> list[dict]:
    p = out / "manifest.jsonl"
    recs = []
    if p.exists():
        for line in p.read_text().splitlines():
            try:
                recs.append(json.loads(line))
            except ValueError:
                pass
    return recs


def dispatch_gaps(records: list[dict]) -> list[float]:
    by_worker: dict[str, list] = {}
    for r in records:
        if r.get("span") and r.get("worker"):
            by_worker.setdefault(r["worker"], []).append(r["span"])
    gaps = []
    for spans in by_worker.values():
        spans.sort()
        gaps += [b[0] - a[1] for a, b in zip(spans, spans[1:])]
    return gaps


def _session_left(sid: int, wait: float) -> list[int]:
    """Live (not zombie) processes of session `sid` still there after up to `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        ps = subprocess.run(["ps", "-o", "pid=,stat=", "-s", str(sid)], capture_output=True, text=True).stdout
        live = [int(pid) for pid, stat in (ln.split()[:2] for ln in ps.splitlines() if ln.strip())
                if not stat.startswith("Z")]
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.5)


def kill_and_resume(folder: Path, out: Path, workers: int, n: int, timeout: float) -> dict:
    cmd = [sys.executable, str(ROOT / "main.py"), "batch", "fit", str(folder), "--out", str(out),
           "--workers", str(workers), "--log-every", "30"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        while len(manifest_records(out)) < n // 2:
            if proc.poll() is not None:
                raise SystemExit("the batch ended before it could be killed")
            if time.perf_counter() - t0 > timeout:
                raise SystemExit("the batch did not get half-way in time")
            time.sleep(0.2)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)     # the driver and the Ray processes it started
        except ProcessLookupError:
            pass
        proc.wait()
    leftover = _session_left(proc.pid, wait=15.0)   # Ray's workers have their own groups, same session
    for pid in leftover:                              # ours: started by the killed driver
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    before = manifest_records(out)
    summary, _ = run_batch(folder, out, workers, timeout)
    after = manifest_records(out)
    finished_first = {r["key"] for r in before}
    second = after[len(before):]
    redone = [r["id"] for r in second if r["key"] in finished_first]
    final = {r["key"]: r["status"] for r in after}
    return {"killed_after": len(before), "second_run_items": len(second), "redone": redone,
            "done_before_reported": summary["done_before"], "complete": len(final) == n,
            "ok_total": sum(s == "ok" for s in final.values()), "ray_processes_left_after_kill": len(leftover)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", default=None, help="photo folder (default ../shared/faces68)")
    ap.add_argument("--photos", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-resume", action="store_true")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--sequential-worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sequential_worker:
        return sequential_worker(*args.sequential_worker)

    from core.paths import shared_path
    src = shared_path("faces68", args.faces, "benchmark photos")
    photos = sorted(p for p in Path(src).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:args.photos]
    n = len(photos)
    work = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    folder = work / "photos"
    folder.mkdir()
    for p in photos:                      # links: the batch sees exactly these photos
        os.symlink(p.resolve(), folder / p.name)
    listing = work / "photos.txt"
    listing.write_text("\n".join(str(folder / p.name) for p in photos))
    print(f"{n} photos from {src}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at start")
    out = {"photos": n, "workers": args.workers, "cores": os.cpu_count()}
    try:
        seq_dir = work / "sequential"
        seq_dir.mkdir()
        with Section() as seq:
            r = subprocess.run([sys.executable, __file__, "--sequential-worker", str(listing), str(seq_dir)],
                               cwd=ROOT, capture_output=True, text=True, timeout=args.timeout)
        if r.returncode != 0:
            raise SystemExit(f"sequential run failed: {r.stderr[-2000:]}")
        seq_res = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"sequential: {n} photos in {seq.wall:.1f} s ({n / seq.wall:.3f} photos/s; {seq_res['ok']} fitted, "
              f"{seq_res['failed']} failed); load {seq.load0[0]:.2f} -> {seq.load1[0]:.2f}, machine busy "
              f"{seq.busy_cores:.2f} cores")
        batch_dir = work / "batch"
        with Section() as bat:
            summary, _ = run_batch(folder, batch_dir, args.workers, args.timeout)
        recs = manifest_records(batch_dir)
        gaps = dispatch_gaps(recs)
        gap_ms = 1000 * sum(gaps) / len(gaps) if gaps else float("nan")
        cons_ms = 1000 * (summary["overhead_per_item_s"] or 0.0)
        speedup = seq.wall / bat.wall
        steady_seq = n / seq_res["items_s"]      # the sequential process once its models are loaded
        print(f"batch ({args.workers} workers): {n} photos in {bat.wall:.1f} s ({n / bat.wall:.3f} photos/s; "
              f"{summary['ok']} fitted, {summary['failed']} failed, {summary['errors']} errors); start-up "
              f"{summary['startup_s']:.1f} s; load {bat.load0[0]:.2f} -> {bat.load1[0]:.2f}, machine busy "
              f"{bat.busy_cores:.2f} cores")
        steady = summary["items_per_s"] / steady_seq
        print(f"throughput vs sequential: {speedup:.2f}x whole runs (target >= {TARGETS['speedup']}x); after "
              f"start-up {steady:.2f}x (batch from its first ready worker vs sequential after its model load "
              f"of {seq_res['load_s']:.1f} s)")
        print(f"overhead per item: dispatch gap {gap_ms:.1f} ms (mean of {len(gaps)} gaps; target <= "
              f"{TARGETS['overhead_ms']:.0f} ms); conservative (idle tail included) {cons_ms:.0f} ms")
        out.update(sequential=seq.figures() | {"photos_per_s": round(n / seq.wall, 4), **seq_res},
                   batch=bat.figures() | {"photos_per_s": round(n / bat.wall, 4), "startup_s": summary["startup_s"],
                                          "processing_s": summary["processing_s"], "ok": summary["ok"],
                                          "failed": summary["failed"], "errors": summary["errors"]},
                   speedup=round(speedup, 3), speedup_after_startup=round(steady, 3), dispatch_overhead_ms=round(gap_ms, 2),
                   conservative_overhead_ms=round(cons_ms, 1))
        if not args.skip_resume:
            with Section() as res_sec:
                res = kill_and_resume(folder, work / "resume", args.workers, n, args.timeout)
            print(f"crash + resume: killed after {res['killed_after']} recorded items, the rerun ran "
                  f"{res['second_run_items']} (reported {res['done_before_reported']} done before), redone "
                  f"{len(res['redone'])}, complete {res['complete']} ({res['ok_total']} fitted); Ray processes "
                  f"left by the kill: {res['ray_processes_left_after_kill']}; {res_sec.wall:.0f} s in all")
            out["resume"] = res | {"wall_s": round(res_sec.wall, 1)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out["load_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
