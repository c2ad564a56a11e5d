"""Runs a batch on Ray: a local instance by default, an existing cluster with `address`.

The driver (this process) expands nothing and decides everything: which items still need work
(results manifest), which worker gets which item (at most `DEPTH` queued per worker so none
waits for the driver), and it alone appends to DIR/manifest.jsonl. Workers are actors
(core/batch/worker.py) that load the command's models once, use `threads` threads, and are
replaced when their memory passes the limit, when they die, or when an item overruns its timeout.
"""
from __future__ import annotations

import logging
import math
import os
import signal
import socket
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .adapter import BatchAdapter, Item
from .progress import Progress, fmt_duration
from .results import MANIFEST, ResultsLog, is_done, now_iso, open_batch_dir, read_results, write_json_atomic

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPTH = 2                 # items queued per worker: one running, one ready to start
SHIP_EXCLUDES = [".git", ".cache", "build", "tests", "bench", "*.egg-info", "__pycache__", "out", "checkpoints"]


class BatchError(Exception):
    """The batch as a whole cannot run (no cluster, a worker cannot load its models ...)."""


@dataclass
class Config:
    workers: int | None = None          # None: one per core (local) / per free CPU slot (cluster)
    address: str | None = None          # None: a private local Ray instance
    cpus_per_worker: float | None = None
    memory_mb: float | None = None      # per worker; None: from the adapter's typical use
    retry_failed: bool = False
    item_timeout: float | None = None
    ship_code: bool = True              # cluster only: upload this checkout as the job's working_dir
    settings: dict = field(default_factory=dict)   # the adapter's worker_options
    progress_stream: Any = None
    log_every: float = 10.0


@dataclass
class Summary:
    command: str
    total: int
    done_before: int
    failed_before: int = 0              # skipped: failed on their input in an earlier run
    ok: int = 0
    failed: int = 0
    errors: int = 0
    interrupted: bool = False
    workers: int = 0
    threads: int = 0
    memory_mb: float = 0.0
    startup_s: float = 0.0
    processing_s: float = 0.0
    wall_s: float = 0.0
    item_seconds: float = 0.0
    recycled: int = 0
    restarted: int = 0
    peak_rss_mb: float = 0.0            # the largest worker resident size seen after an item
    failures: list = field(default_factory=list)   # (id, status, message), this run

    @property
    def ran(self) -> int:
        return self.ok + self.failed + self.errors

    @property
    def overhead_per_item_s(self) -> float:
        """Worker time not spent inside items, per item (dispatch, results, idle at the tail)."""
        if not self.ran or not self.workers:
            return float("nan")
        return max(0.0, self.workers * self.processing_s - self.item_seconds) / self.ran

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("command", "total", "done_before", "failed_before", "ok", "failed", "errors",
                                           "interrupted", "workers", "threads", "memory_mb", "recycled",
                                           "restarted", "peak_rss_mb")}
        d.update(startup_s=round(self.startup_s, 3), processing_s=round(self.processing_s, 3),
                 wall_s=round(self.wall_s, 3), item_seconds=round(self.item_seconds, 3),
                 items_per_s=round(self.ran / self.processing_s, 4) if self.processing_s > 0 else None,
                 overhead_per_item_s=None if math.isnan(self.overhead_per_item_s)
                 else round(self.overhead_per_item_s, 4))
        return d


@dataclass
class _Slot:
    actor: Any
    setup_ref: Any
    started: float
    ready: bool = False
    retiring: bool = False
    queue: deque = field(default_factory=deque)     # refs in submission order; [0] is running
    running_since: float = 0.0
    timed_out: bool = False


def local_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def total_memory_mb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 20
    except (ValueError, OSError):
        return 8192.0


def _worker_env(threads: int) -> dict[str, str]:
    env = {v: str(threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                     "NUMEXPR_NUM_THREADS")}
    return env


def _connect(cfg: Config, threads: int) -> None:
    import ray
    env = _worker_env(threads)
    quiet = dict(log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
    if cfg.address is None:
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
        ray.init(address="local", num_cpus=local_cores(), include_dashboard=False,
                 object_store_memory=128 * 2 ** 20, runtime_env={"env_vars": env}, **quiet)
        return
    _check_reachable(cfg.address)
    runtime_env: dict[str, Any] = {"env_vars": env}
    if cfg.ship_code:
        runtime_env.update(working_dir=str(REPO_ROOT), excludes=SHIP_EXCLUDES)
    else:
        env["PYTHONPATH"] = str(REPO_ROOT)
    try:
        ray.init(address=cfg.address, runtime_env=runtime_env, **quiet)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, grpc errors ...
        raise BatchError(f"cannot connect to the Ray cluster at {cfg.address}: "
                         f"{' '.join(str(exc).split())[:300] or type(exc).__name__}") from None


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds on an address where nothing listens (Ray itself retries for minutes)."""
    hostport = address[len("ray://"):] if address.startswith("ray://") else address
    if address == "auto" or ":" not in hostport:
        return
    host, _, port = hostport.rpartition(":")
    try:
        port_n = int(port)
    except ValueError:
        raise BatchError(f"--address {address}: the port must be a number (ray://HOST:PORT or HOST:PORT)") from None
    try:
        socket.create_connection((host.strip("[]"), port_n), timeout=timeout).close()
    except OSError as exc:
        raise BatchError(f"cannot connect to the Ray cluster at {address}: nothing answers on {host}:{port_n} "
                         f"({exc.strerror or exc})") from None


def _use_token_if_present() -> None:
    """Ray >= 2.59 clusters require a token; its client sends one only in token mode. With a token
    at hand (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token) and no mode chosen, use it."""
    if os.environ.get("RAY_AUTH_MODE"):
        return
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH") \
            or (Path.home() / ".ray" / "auth_token").is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


def _plan(cfg: Config, adapter: BatchAdapter, local: bool = False) -> tuple[int, float, int, float]:
    """(workers, cpus per worker, threads per worker, memory limit MB) for the connected cluster."""
    if cfg.address is None or local:
        cpus = float(local_cores())
        mem_total = total_memory_mb()
    else:
        import ray
        res = ray.cluster_resources()
        cpus = float(res.get("CPU", 1.0))
        mem_total = float(res.get("memory", 0.0)) / 2 ** 20 or total_memory_mb()
    if cfg.cpus_per_worker:
        cpw = float(cfg.cpus_per_worker)
        workers = cfg.workers or max(1, int(cpus // cpw))
    else:
        workers = cfg.workers or max(1, int(cpus))
        # share the cores out; more workers than cores get a fraction each (and one thread)
        cpw = min(cpus / workers, float(max(1, int(cpus // workers)))) if workers <= cpus else cpus / workers
    threads = max(1, int(cpw))
    default_mem = max(2.0 * adapter.typical_memory_mb, 3000.0)
    memory = float(cfg.memory_mb or min(default_mem, 0.8 * mem_total / workers))
    return workers, cpw, threads, memory


def run_batch(adapter: BatchAdapter, items: list[Item], out_dir: Path, cfg: Config) -> Summary:
    """Run every item that is not done yet; returns the summary (also written to DIR/summary.json)."""
    t_start = time.monotonic()
    out_dir = Path(out_dir).resolve()
    open_batch_dir(out_dir, adapter.name)
    previous, torn = read_results(out_dir / MANIFEST)
    stream = cfg.progress_stream or sys.stderr
    if torn:
        print(f"note: the last line of {MANIFEST} was cut short by a crash; its item runs again", file=stream)
    todo = deque(it for it in items if not is_done(previous.get(it.key), out_dir, cfg.retry_failed))
    summary = Summary(adapter.name, len(items), len(items) - len(todo))
    pending = {it.key for it in todo}
    summary.failed_before = sum(1 for it in items if it.key not in pending
                                and previous[it.key]["status"] == "failed")
    log = ResultsLog(out_dir / MANIFEST)
    progress = Progress(adapter.name, len(items), summary.done_before, stream, cfg.log_every)

    def record(it: Item, rec: dict) -> None:
        prev = previous.get(it.key)
        rec = {"key": it.key, "id": it.id, "input": it.input, "status": rec["status"],
               "outputs": rec.get("outputs", []), "figures": rec.get("figures", {}),
               "error": rec.get("error"), "seconds": rec.get("seconds", 0.0), "worker": rec.get("worker"),
               "attempt": (prev.get("attempt", 1) + 1) if isinstance(prev, dict) and
               isinstance(prev.get("attempt"), int) else 1,
               "finished": now_iso(), "options": it.options,
               **({"span": rec["span"]} if rec.get("span") else {}),
               **({"rss_mb": rec["rss_mb"]} if rec.get("rss_mb") else {}),
               **({"cpu_s": rec["cpu_s"]} if rec.get("cpu_s") is not None else {}),
               **({"trace": rec["trace"]} if rec.get("trace") else {})}
        log.append(rec)
        summary.item_seconds += float(rec["seconds"] or 0.0)
        summary.peak_rss_mb = max(summary.peak_rss_mb, float(rec.get("rss_mb") or 0.0))
        counter = rec["status"] if rec["status"] in ("ok", "failed") else "errors"
        setattr(summary, counter, getattr(summary, counter) + 1)
        if rec["status"] != "ok":
            summary.failures.append((it.id, rec["status"], rec["error"]))
        progress.update(rec["status"])

    # inputs that vanished fail here, without a worker
    for it in list(todo) if adapter.inputs_are_files else ():
        if not os.path.exists(it.input):
            todo.remove(it)
            record(it, {"status": "failed", "error": f"input not found: {it.input}"})
    interrupted = False
    old_term = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:   # not the main thread
        old_term = None
    try:
        if todo:
            _run_on_ray(adapter, todo, out_dir, cfg, summary, progress, record, t_start)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
        log.close()
        try:
            import ray
            if ray.is_initialized():
                ray.shutdown()
        except Exception:     # shutting down after an interrupt must not hide the summary
            pass
    progress.finish()
    summary.interrupted = interrupted
    summary.wall_s = time.monotonic() - t_start
    write_json_atomic(out_dir / "summary.json", {**summary.as_dict(), "finished": now_iso()})
    return summary


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _run_on_ray(adapter, todo: deque, out_dir: Path, cfg: Config, summary: Summary, progress: Progress,
                record, t_start: float) -> None:
    if cfg.address is not None:
        _use_token_if_present()     # Ray reads its auth mode when it is imported
    import ray

    from .worker import Worker

    n_todo = len(todo)
    # thread variables go into the job's environment, before the cluster's size is known
    hint = _plan(cfg, adapter, local=True)[2] if cfg.address is None else max(1, int(cfg.cpus_per_worker or 1))
    _connect(cfg, hint)
    workers, cpw, threads, memory = _plan(cfg, adapter)
    workers = min(workers, n_todo)
    summary.workers, summary.threads, summary.memory_mb = workers, threads, round(memory)
    remote = ray.remote(Worker)
    opts = dict(num_cpus=cpw, max_restarts=0, max_concurrency=1)
    if cfg.address is not None:
        opts.update(memory=int(memory * 2 ** 20), scheduling_strategy="SPREAD")

    def start_slot() -> _Slot:
        actor = remote.options(**opts).remote(adapter.name, str(out_dir), threads, memory, cfg.settings)
        return _Slot(actor, actor.setup.remote(), time.monotonic())

    where = "local Ray" if cfg.address is None else f"Ray cluster {cfg.address}"
    print(f"{adapter.name}: {n_todo} item(s) to run on {where}: {workers} worker(s) x {threads} thread(s), "
          f"{cpw:g} CPU and {memory:.0f} MB each", file=progress.stream)
    slots = [start_slot() for _ in range(workers)]
    clock = {"first_ready": None}
    try:
        _schedule(ray, adapter, todo, out_dir, cfg, summary, progress, record, t_start, slots, start_slot,
                  cpw, memory, clock)
    finally:   # also when interrupted: the rate covers the time the workers were working
        if clock["first_ready"] is not None:
            summary.processing_s = time.monotonic() - clock["first_ready"]


def _schedule(ray, adapter, todo: deque, out_dir: Path, cfg: Config, summary: Summary, progress: Progress,
              record, t_start: float, slots: list, start_slot, cpw: float, memory: float, clock: dict) -> None:
    from ray.exceptions import RayActorError, RayTaskError

    inflight: dict[Any, tuple[_Slot, Item]] = {}
    max_restarts = 2 * len(slots) + 8
    first_ready = None
    warned_wait = False
    t_last = time.monotonic()

    def replace(slot: _Slot) -> None:
        try:
            ray.kill(slot.actor, no_restart=True)
        except Exception:
            pass
        slots[slots.index(slot)] = start_slot()

    while todo or inflight:
        for slot in slots:
            if slot.ready and not slot.retiring:
                while len(slot.queue) < DEPTH and todo:
                    it = todo.popleft()
                    ref = slot.actor.run.remote(it.to_dict())
                    if not slot.queue:
                        slot.running_since = time.monotonic()
                    slot.queue.append(ref)
                    inflight[ref] = (slot, it)
        waiting = [s.setup_ref for s in slots if not s.ready] + list(inflight)
        if not waiting:
            raise BatchError("no worker is left to run the remaining items")
        done, _ = ray.wait(waiting, num_returns=1, timeout=1.0)
        if done:
            rest = [r for r in waiting if r not in done]
            if rest:
                done += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        now = time.monotonic()
        for ref in done:
            setup_slot = next((s for s in slots if not s.ready and s.setup_ref == ref), None)
            if setup_slot is not None:
                try:
                    info = ray.get(ref)
                except RayActorError as exc:
                    raise BatchError(f"a worker could not start: {_short(exc)}") from None
                if not info.get("ok"):
                    raise BatchError(f"a worker could not load the {adapter.name} models "
                                     f"({info.get('worker')}): {info.get('error')}")
                setup_slot.ready = True
                if first_ready is None:
                    first_ready = clock["first_ready"] = now
                    summary.startup_s = now - t_start
                    progress.start_clock()
                continue
            if ref not in inflight:      # a dead worker's queued item, already put back
                continue
            slot, it = inflight[ref]
            try:
                rec = ray.get(ref)
            except RayActorError:
                # the worker died: the item it was running is charged, its queued ones go back
                running = slot.queue[0] if slot.queue else ref
                for other in reversed(slot.queue):
                    if other is not running and other in inflight:
                        todo.appendleft(inflight.pop(other)[1])
                run_item = inflight.pop(running)[1] if running in inflight else it
                msg = (f"took longer than {cfg.item_timeout:g} s (--item-timeout); its worker was stopped"
                       if slot.timed_out else "the worker process died while running this item "
                       "(a crash, or killed for using too much memory)")
                record(run_item, {"status": "error", "error": msg})
                summary.restarted += 1
                if summary.restarted > max_restarts:
                    raise BatchError(f"workers died {summary.restarted} times; stopping (see the errors in "
                                     f"{out_dir / MANIFEST})") from None
                replace(slot)
                continue
            except RayTaskError as exc:
                rec = {"status": "error", "error": _short(exc)}
            del inflight[ref]
            slot.queue.remove(ref)
            slot.running_since = now
            record(it, rec)
            if rec.get("recycle"):
                slot.retiring = True
            if slot.retiring and not slot.queue:
                summary.recycled += 1
                replace(slot)
        # timeouts: stop a worker whose running item overran; its death is handled above
        if cfg.item_timeout:
            for slot in slots:
                if slot.queue and not slot.timed_out and now - slot.running_since > cfg.item_timeout:
                    slot.timed_out = True
                    ray.kill(slot.actor, no_restart=True)
        if first_ready is None and not warned_wait and now - t_start > 120:
            warned_wait = True
            print(f"\nstill waiting for workers after {fmt_duration(now - t_start)}: each asks for {cpw:g} CPU "
                  f"and {memory:.0f} MB; the cluster has {ray.available_resources()}", file=progress.stream)
        if now - t_last > 0.5:
            progress.draw()
            t_last = now


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:400] + "...") if len(text) > 400 else text
