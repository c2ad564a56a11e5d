"""The Ray actor that runs items: one per worker process, models loaded once in `setup`.

Kept free of Ray imports: `runner.py` wraps the class with `ray.remote` and its resources.
"""
from __future__ import annotations

import os
import socket
import time
import traceback
from pathlib import Path

from .adapter import Item, ItemFailed


def rss_mb() -> float:
    """This process's resident memory (MB), from /proc (0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except (OSError, ValueError, IndexError):
        return 0.0


def set_threads(threads: int) -> None:
    """Cap every thread pool we use so that N workers x threads <= the cores given to them."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:   # already set in this process (a restarted actor)
        pass
    import cv2
    cv2.setNumThreads(threads)


class Worker:
    def __init__(self, command: str, out_dir: str, threads: int, memory_limit_mb: float,
                 settings: dict | None = None):
        self.command, self.out_dir = command, Path(out_dir)
        self.threads, self.memory_limit_mb = threads, memory_limit_mb
        self.where = f"{socket.gethostname()}:{os.getpid()}"
        self.settings = dict(settings or {})
        self.state = None
        self.adapter = None

    def setup(self) -> dict:
        """Load the command's models; {'ok': False, 'error': ...} when this worker cannot work."""
        t0 = time.perf_counter()
        try:
            if not self.out_dir.is_dir():
                raise ItemFailed(f"the worker on {socket.gethostname()} cannot see the output folder "
                                 f"{self.out_dir}: inputs and --out must be on storage every node mounts "
                                 f"at the same path (docs/BATCH.md)")
            set_threads(self.threads)
            from .registry import get_adapter
            self.adapter = get_adapter(self.command)
            self.state = self.adapter.load(self.threads, self.settings)
        except Exception as exc:   # reported to the driver, which stops the batch with the message
            from core.commands import is_user_error
            return {"ok": False, "error": _message(exc, isinstance(exc, ItemFailed) or is_user_error(exc)),
                    "worker": self.where,
                    "trace": traceback.format_exc(limit=-4)[-2000:]}
        return {"ok": True, "worker": self.where, "threads": self.threads,
                "load_s": round(time.perf_counter() - t0, 3), "rss_mb": round(rss_mb())}

    def run(self, item: dict) -> dict:
        """Process one item; never raises for the item's own problems."""
        from core.commands import is_user_error
        it = Item(**item)
        t_start = time.time()
        t0, cpu0 = time.perf_counter(), time.process_time()
        rec = {"outputs": [], "figures": {}, "error": None}
        try:
            res = self.adapter.process(self.state, it, self.out_dir)
            rec.update(status="ok", outputs=list(res.outputs), figures=dict(res.figures))
        except MemoryError:
            rec.update(status="error", error=f"ran out of memory (worker limit {self.memory_limit_mb:.0f} MB)")
        except Exception as exc:
            user = isinstance(exc, ItemFailed) or is_user_error(exc)
            rec.update(status="failed" if user else "error", error=_message(exc, user))
            if not user:
                rec["trace"] = traceback.format_exc(limit=-6)[-3000:]
        rec["seconds"] = round(time.perf_counter() - t0, 3)
        rec["cpu_s"] = round(time.process_time() - cpu0, 3)   # all this process's threads: its share of cores
        rec["span"] = [round(t_start, 3), round(time.time(), 3)]   # worker clock (unix s): gaps = overhead
        rec["worker"] = self.where
        mem = rss_mb()
        rec["rss_mb"] = round(mem)
        # past the limit the driver replaces this worker (a fresh process gives the memory back)
        rec["recycle"] = bool(self.memory_limit_mb and mem > self.memory_limit_mb)
        return rec

    def close(self) -> None:
        if self.adapter is not None:
            self.adapter.close(self.state)


def _message(exc: BaseException, user: bool) -> str:
    """The user's sentence for their input's problems; the type too for our own failures."""
    text = " ".join(str(exc).split())
    if user and text:
        return text[:1000]
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:1000]
