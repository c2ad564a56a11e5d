"""Run slow work (mesh extraction, loading, exporting) off the GUI thread.

A Task is a QRunnable on the global QThreadPool; its function gets a `TaskContext` to report
progress and to poll for cancellation. Results come back through Qt signals, which Qt delivers
on the GUI thread (queued connection), so handlers may touch widgets and the document.
"""
from __future__ import annotations

import logging
import threading
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised inside a task when its context was cancelled."""


class TaskContext:
    def __init__(self, signals: "TaskSignals") -> None:
        self._signals = signals
        self._cancel = threading.Event()

    def progress(self, fraction: float, text: str = "") -> None:
        self._signals.progress.emit(float(fraction), text)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()


class TaskSignals(QObject):
    progress = Signal(float, str)
    finished = Signal(object)   # the function's result
    failed = Signal(str)        # a message for the user
    cancelled = Signal()
    done = Signal()             # always last, whatever happened


class Task(QRunnable):
    def __init__(self, title: str, fn: Callable[[TaskContext], Any]) -> None:
        super().__init__()
        self.setAutoDelete(False)  # we keep a reference; Qt must not delete it under us
        self.quiet = False
        self.title = title
        self.signals = TaskSignals()
        self.context = TaskContext(self.signals)
        self._fn = fn

    def run(self) -> None:  # worker thread
        try:
            result = self._fn(self.context)
            if self.context.cancelled:
                self.signals.cancelled.emit()
            else:
                self.signals.finished.emit(result)
        except Cancelled:
            self.signals.cancelled.emit()
        except Exception as exc:  # reported to the user, never lost
            if self.context.cancelled:  # e.g. core.export.ExportCancelled after Cancel was pressed
                self.signals.cancelled.emit()
                return
            log.debug("task %s failed:\n%s", self.title, traceback.format_exc())
            self.signals.failed.emit(f"{self.title} failed: {exc}")
        finally:
            self.signals.done.emit()

    def cancel(self) -> None:
        self.context.cancel()


class TaskRunner(QObject):
    """Starts tasks and tracks the running ones so the status bar can show progress and cancel."""

    changed = Signal()                 # the set of running tasks changed
    progress = Signal(str, float, str)  # title, fraction, text

    def __init__(self, parent: QObject | None = None, pool: QThreadPool | None = None) -> None:
        super().__init__(parent)
        self.pool = pool or QThreadPool.globalInstance()
        self.running: list[Task] = []

    def start(self, title: str, fn: Callable[[TaskContext], Any],
              on_done: Callable[[Any], None] | None = None,
              on_error: Callable[[str], None] | None = None,
              on_cancel: Callable[[], None] | None = None, quiet: bool = False,
              on_end: Callable[[], None] | None = None) -> Task:
        """Run fn(ctx) on the pool. `quiet` tasks (sub-second helpers) do not show in the
        status bar's progress/cancel area. `on_end` runs last, however the task ended; it is
        connected here, before the task starts (a fast task's signal would otherwise be lost)."""
        task = Task(title, fn)
        task.quiet = quiet
        alive = self._while_alive
        if on_done:
            task.signals.finished.connect(alive(on_done))
        task.signals.failed.connect(alive(on_error or (lambda msg: log.error("%s", msg))))
        if on_cancel:
            task.signals.cancelled.connect(alive(on_cancel))
        if on_end:
            task.signals.done.connect(alive(on_end))
        task.signals.progress.connect(alive(lambda f, s, t=task: self.progress.emit(t.title, f, s)))
        task.signals.done.connect(alive(lambda t=task: self._finished(t)))
        self.running.append(task)
        if not quiet:
            self.changed.emit()
        self.pool.start(task)
        return task

    def _while_alive(self, fn: Callable[..., Any]) -> Callable[..., None]:
        """fn, called only while this runner (and so its owner: a window, a controller) still
        exists: tasks run on the shared pool and may end after their window was closed and
        deleted, when their callbacks would touch deleted Qt objects."""
        from shiboken6 import isValid

        def call(*args) -> None:
            if isValid(self):
                fn(*args)
        return call

    def cancel_all(self) -> None:
        for t in self.running:
            t.cancel()

    def wait(self, msecs: int = -1) -> bool:
        return self.pool.waitForDone(msecs)

    def _finished(self, task: Task) -> None:
        if task in self.running:
            self.running.remove(task)
        if not task.quiet:
            self.changed.emit()


class LatestWins:
    """One background task of a kind at a time, the newest request winning: `claim()` gives a
    new generation number when none runs, else remembers the request and gives None; pass
    `ended` as the task's on_end and `rerun` is called once if requests came meanwhile.
    Results carry their generation so a late one can be told from the newest."""

    def __init__(self, rerun: Callable[[], None]):
        self.rerun = rerun
        self.task: Task | None = None
        self.pending = False
        self.gen = 0

    @property
    def busy(self) -> bool:
        return self.task is not None

    def claim(self) -> int | None:
        if self.task is not None:
            self.pending = True
            return None
        self.gen += 1
        return self.gen

    def ended(self) -> bool:
        """The task ended; True when a remembered request was started again."""
        self.task = None
        if self.pending:
            self.pending = False
            self.rerun()
            return True
        return False
