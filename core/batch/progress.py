"""A one-line progress bar on stderr: done/total, ok/failed, rate over the recent items, ETA.
On a terminal it redraws in place; in a log file it prints a line every `log_every` seconds."""
from __future__ import annotations

import sys
import time
from collections import deque


def fmt_duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60}:{rem % 60:02d}"


class Progress:
    def __init__(self, label: str, total: int, done_before: int = 0, stream=None, log_every: float = 10.0,
                 window: int = 50):
        self.label, self.total, self.before = label, total, done_before
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.log_every = log_every
        self.ok = self.failed = self.errors = 0
        self.t0 = time.monotonic()
        self.times: deque[float] = deque(maxlen=window)   # completion times of recent items
        self._last_draw = 0.0

    @property
    def done(self) -> int:
        return self.ok + self.failed + self.errors

    def start_clock(self) -> None:
        """Rates count from here (after the workers loaded their models)."""
        self.t0 = time.monotonic()

    def rate(self) -> float:
        """Items per second: over the recent window once it has a few items, else since the start."""
        now = time.monotonic()
        if len(self.times) >= 5:
            span = now - self.times[0]
            return (len(self.times) - 1) / span if span > 0 else 0.0
        elapsed = now - self.t0
        return self.done / elapsed if elapsed > 0 and self.done else 0.0

    def update(self, status: str) -> None:
        if status == "ok":
            self.ok += 1
        elif status == "failed":
            self.failed += 1
        else:
            self.errors += 1
        self.times.append(time.monotonic())
        self.draw()

    def line(self) -> str:
        todo = self.total - self.before
        frac = (self.before + self.done) / self.total if self.total else 1.0
        width = 24
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        rate = self.rate()
        eta = (todo - self.done) / rate if rate > 0 else float("nan")
        bad = f", failed {self.failed}" if self.failed else ""
        bad += f", errors {self.errors}" if self.errors else ""
        skipped = f" ({self.before} done before)" if self.before else ""
        return (f"{self.label} [{bar}] {self.before + self.done}/{self.total}{skipped} ok {self.ok}{bad} | "
                f"{rate:.2f} items/s | {fmt_duration(time.monotonic() - self.t0)} elapsed | "
                f"ETA {fmt_duration(eta)}")

    def draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            if force or now - self._last_draw >= 0.2:
                self.stream.write("\r" + self.line()[:200] + "\x1b[K")
                self.stream.flush()
                self._last_draw = now
        elif force or now - self._last_draw >= self.log_every:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self._last_draw = now

    def finish(self) -> None:
        self.draw(force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
