"""Caption panel: describe the expression dynamics of a video or of the current clip
(core.caption), off the GUI thread with progress and cancel; the paragraph and its events."""
from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.m4v);;All files (*)"


class CaptionPanel(QWidget):
    status_changed = Signal(str)
    captioned = Signal(object)          # core.caption.Caption

    def __init__(self, runner, clip_source=None, parent: QWidget | None = None) -> None:
        """`clip_source()`: the current animation clip or None (the timeline's)."""
        super().__init__(parent)
        self.runner, self.clip_source = runner, clip_source
        self.caption = None
        self.task = None
        self.video_button = QPushButton("Caption a Video…")
        self.clip_button = QPushButton("Caption the Current Clip")
        self.save_button = QPushButton("Save JSON…", enabled=False)
        self.cancel_button = QPushButton("Cancel", enabled=False)
        self.video_button.clicked.connect(lambda: self.caption_video())
        self.clip_button.clicked.connect(self.caption_current_clip)
        self.save_button.clicked.connect(lambda: self.save_json())
        self.cancel_button.clicked.connect(self.cancel)
        self.status = QLabel("Describes the main character's expressions over time.", wordWrap=True)
        self.text = QPlainTextEdit(readOnly=True)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["start", "end", "event", "detail"])
        self.table.horizontalHeader().setStretchLastSection(True)
        row = QHBoxLayout()
        for b in (self.video_button, self.clip_button, self.save_button, self.cancel_button):
            row.addWidget(b)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.status)
        lay.addWidget(self.text, 2)
        lay.addWidget(self.table, 3)

    # --- actions ------------------------------------------------------------------------------
    def caption_video(self, path: str | Path | None = None):
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Caption a video", "", VIDEO_FILTER)
            if not path:
                return None
        from core.caption import caption_video
        p = Path(path)
        return self._start(f"Captioning {p.name}",
                           lambda ctx: caption_video(p, progress=ctx.progress, cancelled=lambda: ctx.cancelled))

    def caption_current_clip(self):
        clip = self.clip_source() if self.clip_source else None
        if clip is None:
            self._say("No clip to caption: record or import one in the Timeline first.")
            return None
        from core.caption import caption_clip
        return self._start(f"Captioning clip {clip.name}", lambda ctx: caption_clip(clip))

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def save_json(self, path: str | Path | None = None) -> Path | None:
        if self.caption is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save caption", "caption.json", "JSON (*.json)")
            if not path:
                return None
        from core.paint.errors import PaintError
        from core.paint.files import write_atomic
        try:
            return write_atomic(path, json.dumps(self.caption.to_json(), indent=1).encode())
        except PaintError as exc:
            self._say(f"error: {exc}")
            return None

    # --- task plumbing ------------------------------------------------------------------------
    def _start(self, title: str, fn):
        if self.task is not None:
            self._say("A caption is already being made; cancel it first.")
            return None
        self._busy(True)
        self._say(f"{title}…")
        self.task = self.runner.start(title, fn, on_done=self._done, on_error=self._failed,
                                      on_cancel=lambda: self._say("Captioning cancelled."))
        self.task.signals.done.connect(lambda: self._busy(False))
        return self.task

    def _busy(self, busy: bool) -> None:
        if not busy:
            self.task = None
        self.video_button.setEnabled(not busy)
        self.clip_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)

    def _done(self, cap) -> None:
        from core.caption.events import UNSCORED
        self.caption = cap
        self.text.setPlainText(cap.text)
        events = [e for e in cap.events if e.type not in UNSCORED]
        self.table.setRowCount(len(events))
        for i, e in enumerate(events):
            for j, v in enumerate((f"{e.start:.2f}", f"{e.end:.2f}", e.type, e.detail)):
                item = QTableWidgetItem(v)
                item.setFlags(item.flags() & ~Qt.ItemIsEditable)
                self.table.setItem(i, j, item)
        self.save_button.setEnabled(True)
        self._say(f"{len(events)} events over {cap.seconds:.1f} s.")
        self.captioned.emit(cap)

    def _failed(self, message: str) -> None:
        self._say(f"error: {message}")

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.status_changed.emit(text)
