"""`python main.py batch fit|fer|... INPUTS... --out DIR [--workers N] [--address ray://HOST:PORT]`:
run a command over folders, glob patterns or an input manifest on Ray (docs/BATCH.md)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.commands import UserError

NAME = "batch"
HELP = "Run fit/fer/... over folders, globs or a CSV/JSONL manifest on Ray (local, or a cluster)."


def add_arguments(p) -> None:
    from core.batch.registry import adapters
    sub = p.add_subparsers(title="batch commands", metavar="COMMAND", dest="batch_command", required=True)
    for ad in adapters().values():
        q = sub.add_parser(ad.name, help=ad.help, description=ad.help + " Inputs: folders (searched "
                           f"recursively for {', '.join(sorted(ad.suffixes))}), files, glob patterns "
                           "(quoted) or input manifests (.csv/.jsonl, docs/BATCH.md).")
        q.add_argument("inputs", nargs="+", help="folders, files, 'glob/**/*.jpg' patterns, manifest.csv/.jsonl")
        q.add_argument("--out", required=True, help="output folder (created; rerun with the same folder to resume)")
        q.add_argument("--workers", type=_positive_int, default=None,
                       help="worker processes (default: one per core here, or per CPU of the cluster)")
        q.add_argument("--address", default=None,
                       help="an existing Ray cluster: ray://HOST:10001 (Ray Client) or HOST:6379 / auto on a node "
                            "(default: start a private local Ray instance)")
        q.add_argument("--cpus-per-worker", type=_positive_float, default=None,
                       help="CPUs each worker reserves; its threads = this, rounded down (default: cores / workers "
                            "locally, 1 on a cluster)")
        q.add_argument("--memory-mb", type=_positive_float, default=None,
                       help=f"memory per worker; a worker above it is replaced after its item (default "
                            f"{max(2 * ad.typical_memory_mb, 3000)} MB, less when the machine is smaller)")
        q.add_argument("--retry-failed", action="store_true", help="rerun items that failed on their input before")
        q.add_argument("--item-timeout", type=_positive_float, default=None,
                       help="stop an item after this many seconds (its worker is replaced)")
        q.add_argument("--no-ship-code", action="store_true",
                       help="cluster: use the Likeness checkout at this same path on every node instead of "
                            "uploading this one")
        q.add_argument("--log-every", type=_positive_float, default=10.0,
                       help="seconds between progress lines when stderr is not a terminal")
        for opt in ad.options + ad.worker_options:
            kw = dict(dest=f"opt_{opt.name}", help=f"{opt.help} (default {opt.default!r})")
            if opt.type is bool:
                q.add_argument(opt.flag, action=argparse.BooleanOptionalAction, default=None, **kw)
            else:
                q.add_argument(opt.flag, default=None, type=_parser_for(opt), metavar=opt.name.upper(), **kw)


def _parser_for(opt):
    def parse(text: str):
        try:
            return opt.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return v


def run(args) -> int:
    from core.batch.inputs import collect_items
    from core.batch.registry import get_adapter
    from core.batch.runner import BatchError, Config, run_batch

    adapter = get_adapter(args.batch_command)
    batch_options = {o.name: (getattr(args, f"opt_{o.name}") if getattr(args, f"opt_{o.name}") is not None
                              else o.default) for o in adapter.options}
    settings = {o.name: (getattr(args, f"opt_{o.name}") if getattr(args, f"opt_{o.name}") is not None
                         else o.default) for o in adapter.worker_options}
    if args.address is not None and not args.address.strip():
        raise UserError("--address is empty")
    items, notes = collect_items(args.inputs, adapter, batch_options)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    cfg = Config(workers=args.workers, address=args.address, cpus_per_worker=args.cpus_per_worker,
                 memory_mb=args.memory_mb, retry_failed=args.retry_failed, item_timeout=args.item_timeout,
                 ship_code=not args.no_ship_code, settings=settings, log_every=args.log_every)
    out = Path(args.out)
    try:
        summary = run_batch(adapter, items, out, cfg)
    except BatchError as exc:
        raise UserError(str(exc)) from None
    print_summary(summary, out)
    if summary.interrupted:
        return 130
    # 1 while any item of the batch is not fitted/recognised (this run or an earlier one)
    return 0 if summary.failed == summary.errors == summary.failed_before == 0 else 1


def print_summary(s, out: Path, stream=None) -> None:
    from core.batch.progress import fmt_duration
    stream = stream or sys.stdout
    previous = f"; {s.done_before} done before" if s.done_before else ""
    if s.failed_before:
        previous += f" ({s.failed_before} of them failed: --retry-failed reruns them)"
    head = "interrupted" if s.interrupted else "finished"
    rate = f", {s.ran / s.processing_s:.2f} items/s" if s.processing_s > 0 and s.ran else ""
    print(f"{s.command} {head}: {s.ok} ok, {s.failed} failed, {s.errors} errors of {s.total}{previous} in "
          f"{fmt_duration(s.wall_s)} (startup {s.startup_s:.1f} s{rate}"
          + (f", {s.workers} worker(s) x {s.threads} thread(s)" if s.workers else "") + ")", file=stream)
    for item_id, status, message in s.failures[:20]:
        print(f"  {status} {item_id}: {message}", file=stream)
    if len(s.failures) > 20:
        print(f"  ... and {len(s.failures) - 20} more (status != \"ok\" in the manifest)", file=stream)
    if s.interrupted:
        print("rerun the same command to finish the remaining items", file=stream)
    print(f"manifest: {out / 'manifest.jsonl'}", file=stream)
    print(json.dumps(s.as_dict()), file=stream)
