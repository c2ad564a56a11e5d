"""Fuzz every user-file reader at scale (issue 30): mutated projects (formats 1-3, with a paint/
folder), photos, .pts landmarks, face-model and expression-model weights, videos, landmark tables,
the appearance model, PSDs, layer images and paint recovery files. Prints counts per reader and
outcome (ok / error / crash / hang / memory), saves each crash's or hang's mutant under
--save (default .cache/fuzz/), last line JSON.

    python bench/fuzz.py [--cases 10000] [--first 0] [--seed 1] [--workers 2] [--readers psd,layer_image]

Cases are numbered per reader and fully determined by (seed, reader, number), so a long run can
be split: `--first 5000 --cases 10000` runs numbers 5000-9999.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import fuzzing  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000, help="cases per reader (default 10000)")
    ap.add_argument("--first", type=int, default=0, help="first case number (to continue a split run)")
    ap.add_argument("--seed", type=int, default=1, help="seed (the test suite uses seed 0)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--readers", "--reader", default=",".join(fuzzing.READERS), help="comma-separated subset")
    ap.add_argument("--case-seconds", type=float, default=fuzzing.CASE_SECONDS)
    ap.add_argument("--save", default=".cache/fuzz", help="folder for crashing mutants")
    args = ap.parse_args()
    # a kill (SIGTERM) still closes the workers and removes their case folders
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    readers = [r for r in args.readers.split(",") if r]
    unknown = set(readers) - set(fuzzing.READERS)
    if unknown:
        print(f"error: unknown readers {sorted(unknown)}; known: {', '.join(fuzzing.READERS)}", file=sys.stderr)
        return 2
    cases = [(r, args.seed, i) for i in range(args.first, args.cases) for r in readers]
    save = Path(args.save)
    t0 = time.time()
    done = [0]
    bad: list[fuzzing.Result] = []

    def progress(res: fuzzing.Result) -> None:
        done[0] += 1
        if res.outcome not in ("ok", "error"):
            bad.append(res)
            print(f"  {res.outcome}: {res.reader} #{res.index} ({res.what}): {res.detail}", flush=True)
        if done[0] % 1000 == 0:
            print(f"  {done[0]}/{len(cases)} cases, {time.time() - t0:.0f} s", flush=True)

    with fuzzing.Pool(args.workers, case_seconds=args.case_seconds) as pool:
        start = time.time() - t0
        results = pool.run(cases, progress)
    seconds = time.time() - t0
    save.mkdir(parents=True, exist_ok=True)
    for res in bad:
        try:
            data, _ = fuzzing.mutant(res.reader, args.seed, res.index)
        except Exception as exc:   # a harness failure is reported above; nothing to save
            print(f"  cannot rebuild {res.reader} #{res.index}: {type(exc).__name__}: {exc}")
            continue
        (save / f"{res.reader}_{args.seed}_{res.index}{fuzzing.READERS[res.reader].suffix}").write_bytes(data)
    summary = fuzzing.summarize(results)
    print(f"{'reader':12s} " + " ".join(f"{o:>7s}" for o in fuzzing.OUTCOMES) + "   ms/case")
    for r in readers:
        s = summary.get(r, {})
        ms = 1000 * sum(x.seconds for x in results if x.reader == r) / max(1, sum(s.values()))
        print(f"{r:12s} " + " ".join(f"{s.get(o, 0):7d}" for o in fuzzing.OUTCOMES) + f"   {ms:7.1f}")
    crashes = sum(s["crash"] + s["memory"] for s in summary.values())
    hangs = sum(s["hang"] for s in summary.values())
    print(f"{len(results)} cases in {seconds:.0f} s (workers ready after {start:.0f} s); "
          f"{crashes} crashes, {hangs} hangs" + (f"; mutants in {save}" if bad else ""))
    print(json.dumps({"cases_per_reader": args.cases - args.first, "first": args.first, "seed": args.seed, "seconds": round(seconds, 1),
                      "crashes": crashes, "hangs": hangs, "per_reader": summary}))
    return 0 if not (crashes or hangs) else 1


if __name__ == "__main__":
    sys.exit(main())
