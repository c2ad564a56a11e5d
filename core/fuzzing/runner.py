"""Running cases: worker processes that read each mutant under a per-case deadline (a hang kills and
replaces the worker) and an address-space cap (a declared size that blows up becomes "memory")."""
from __future__ import annotations

import multiprocessing as mp
import os
import resource
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Callable

from .mutations import _bomb, make_case
from .readers import READERS, Reader, _errors

OUTCOMES = ("ok", "error", "crash", "hang", "memory")
CASE_SECONDS = 20.0          # a case taking longer is a hang (generous: the machine may be busy)
MEMORY_HEADROOM = 3 << 30    # address space a worker may add on top of what its imports took


# --- running cases ----------------------------------------------------------------------------

def address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _worker(conn, headroom: int, tmp: str) -> None:
    """Runs cases sent as (reader, seed, index) in the folder `tmp` and answers (outcome, what, detail)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # Decoders (FFmpeg, libjpeg) print to the C stderr on every damaged file: keep it quiet.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    import warnings
    warnings.simplefilter("ignore")
    import torch
    torch.set_num_threads(1)
    import cv2
    cv2.setNumThreads(1)
    tmp = Path(tmp)
    samples: dict[str, list[bytes]] = {}
    checks: dict[str, list[tuple[str, str]]] = {}
    for name, r in READERS.items():   # load every reader's modules before capping memory
        samples[name] = r.samples()   # ... and check that the unmutated samples load
        checks[name] = [run_one(r, data, tmp) for data in samples[name]]
    _bomb()
    limit = address_space() + headroom
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn.send(("ready", checks))
    while True:
        msg = conn.recv()
        if msg is None:
            break
        name, seed, index = msg
        r = READERS[name]
        what = "?"
        try:
            data, what = make_case(r, samples[name], seed, index)
            outcome, detail = run_one(r, data, tmp)
        except BaseException as exc:   # noqa: BLE001 - the harness itself must survive anything
            outcome, detail = "crash", f"harness: {type(exc).__name__}: {exc}"
        conn.send((outcome, what, detail))


def run_one(r: Reader, data: bytes, tmp: Path) -> tuple[str, str]:
    p = tmp / f"case{r.suffix}"
    p.write_bytes(data)
    allowed = _errors(r.error)
    try:
        r.read(p)
        return "ok", ""
    except MemoryError:
        return "memory", "MemoryError"
    except allowed as exc:
        msg = str(exc).strip()
        if len(msg) < 10:
            return "crash", f"{type(exc).__name__} without a message: {msg!r}"
        return "error", msg[:200]
    except Exception as exc:
        tb = traceback.extract_tb(exc.__traceback__)
        where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
        return "crash", f"{type(exc).__name__} at {where}: {str(exc)[:200]}"


@dataclass
class Result:
    reader: str
    index: int
    outcome: str
    what: str
    detail: str
    seconds: float


class Pool:
    """Worker processes with a per-case deadline; a worker that misses it is killed and replaced."""

    def __init__(self, workers: int = 2, case_seconds: float = CASE_SECONDS,
                 headroom: int = MEMORY_HEADROOM):
        self.ctx = mp.get_context("spawn")
        self.case_seconds, self.headroom = case_seconds, headroom
        self.sample_checks: dict[str, list[tuple[str, str]]] = {}   # reader -> (outcome, detail) per sample
        # Workers start together (each imports every reader, seconds of work) and are awaited after.
        self.workers = [self._spawn() for _ in range(workers)]
        for w in self.workers:
            self._await_ready(w)

    def _spawn(self) -> tuple:
        parent, child = self.ctx.Pipe()
        # The parent owns the case folder, so a killed worker's files are removed too.
        tmp = tempfile.mkdtemp(prefix="likeness-fuzz-")
        proc = self.ctx.Process(target=_worker, args=(child, self.headroom, tmp), daemon=True)
        proc.start()
        child.close()
        return proc, parent, tmp

    def _await_ready(self, worker: tuple) -> None:
        proc, conn, _ = worker
        msg = conn.recv() if conn.poll(300) else None
        if not (isinstance(msg, tuple) and msg[0] == "ready"):
            self.close()
            raise RuntimeError("fuzz worker did not start")
        self.sample_checks = msg[1]

    def run(self, cases: list[tuple[str, int, int]],
            progress: Callable[[Result], None] = lambda r: None) -> list[Result]:
        todo = list(cases)[::-1]
        busy: dict[int, tuple[tuple, float]] = {}
        results: list[Result] = []
        while todo or busy:
            for w, (proc, conn, _) in enumerate(self.workers):
                if w not in busy and todo:
                    case = todo.pop()
                    conn.send(case)
                    busy[w] = (case, time.monotonic())
            ready = wait([self.workers[w][1] for w in busy], timeout=0.5)
            now = time.monotonic()
            for w in list(busy):
                proc, conn, _ = self.workers[w]
                case, t0 = busy[w]
                res = None
                if conn in ready:
                    try:
                        outcome, what, detail = conn.recv()
                        res = Result(case[0], case[2], outcome, what, detail, now - t0)
                    except (EOFError, OSError):   # the worker died (a native crash, the memory cap)
                        res = Result(case[0], case[2], "crash", "?", f"worker died (exit {proc.exitcode})",
                                     now - t0)
                        self._replace(w)
                elif now - t0 > self.case_seconds:
                    res = Result(case[0], case[2], "hang", "?", f"no answer in {self.case_seconds:.0f} s",
                                 now - t0)
                    self._replace(w)
                if res is not None:
                    del busy[w]
                    results.append(res)
                    progress(res)
        return results

    def _replace(self, w: int) -> None:
        proc, conn, tmp = self.workers[w]
        proc.kill()
        proc.join(10)
        shutil.rmtree(tmp, ignore_errors=True)
        self.workers[w] = self._spawn()
        self._await_ready(self.workers[w])

    def close(self) -> None:
        for proc, conn, tmp in self.workers:
            try:
                conn.send(None)
            except OSError:
                pass
        for proc, conn, tmp in self.workers:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
            shutil.rmtree(tmp, ignore_errors=True)

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def mutant(reader: str, seed: int, index: int) -> tuple[bytes, str]:
    """The exact bytes of one case, to save a crash as a regression fixture."""
    r = READERS[reader]
    return make_case(r, r.samples(), seed, index)


def summarize(results: list[Result]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in results:
        out.setdefault(r.reader, {o: 0 for o in OUTCOMES})[r.outcome] += 1
    return out
