"""Generate: text -> candidate avatars (thumbnails, how the prompt was read), pick one; and edit
the current avatar by text with a strength.

Sampling and the thumbnails run on the TaskRunner's pool (progress, Cancel); the GUI thread
only shows results. Picking emits `picked(Avatar)`: the window replaces the document after its
unsaved-changes prompt. An edit is applied to the document through its setters (one change the
user can save or undo by reopening, like a slider move).
"""
from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QObject, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QLineEdit, QListWidget, QListWidgetItem, QProgressBar, QPushButton,
                               QSlider, QSpinBox, QVBoxLayout, QWidget)

from core.avatar import Avatar
from core.generate import DEFAULT_GUIDANCE

log = logging.getLogger(__name__)
THUMB = 160


class _Relay(QObject):
    """Signals emitted from worker threads (queued to the GUI thread)."""
    thumbnail = Signal(int, int, object)   # generation id, index, RGB uint8 image


def _pixmap(img: np.ndarray) -> QPixmap:
    img = np.ascontiguousarray(img)
    h, w = img.shape[:2]
    return QPixmap.fromImage(QImage(img.data, w, h, 3 * w, QImage.Format_RGB888).copy())


class GeneratePanel(QWidget):
    picked = Signal(object)          # Avatar chosen by the user
    status_changed = Signal(str)

    def __init__(self, avatar: Avatar, runner, generator_factory=None, render_thumbnails: bool = True,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.avatar = avatar
        self.runner = runner
        self._factory = generator_factory
        self._generator = None
        self.render_thumbnails = render_thumbnails
        self.candidates: list = []
        self.task = None
        self.edit_task = None
        self._gen_id = 0
        self._relay = _Relay(self)
        self._relay.thumbnail.connect(self._thumbnail_ready)

        self.prompt = QLineEdit(placeholderText="e.g. a long narrow nose, full lips, short blond hair, smiling")
        self.negative = QLineEdit(placeholderText="negative prompt (optional), e.g. big ears")
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.guidance = QDoubleSpinBox(minimum=0.0, maximum=20.0, singleStep=0.5, value=DEFAULT_GUIDANCE)
        self.count = QSpinBox(minimum=1, maximum=8, value=4)
        self.generate_button = QPushButton("Generate")
        self.cancel_button = QPushButton("Cancel", enabled=False)
        self.progress = QProgressBar(minimum=0, maximum=100, value=0, textVisible=True)
        self.reading_label = QLabel(wordWrap=True, textInteractionFlags=Qt.TextSelectableByMouse)
        self.results = QListWidget(viewMode=QListWidget.IconMode, iconSize=QSize(THUMB, THUMB),
                                   resizeMode=QListWidget.Adjust, movement=QListWidget.Static,
                                   wordWrap=True, spacing=4)
        self.results.setMinimumHeight(THUMB + 50)
        self.use_button = QPushButton("Use selected avatar", enabled=False)

        form = QFormLayout()
        form.addRow("Prompt", self.prompt)
        form.addRow("Negative", self.negative)
        row = QHBoxLayout()
        for label, w in (("Seed", self.seed), ("Guidance", self.guidance), ("Count", self.count)):
            row.addWidget(QLabel(label))
            row.addWidget(w)
        form.addRow(row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)

        self.edit_text = QLineEdit(placeholderText='e.g. "make the nose longer", "darker hair", "fuller lips"')
        self.strength = QSlider(Qt.Horizontal, minimum=0, maximum=100, value=50)
        self.strength_label = QLabel("0.50")
        self.edit_button = QPushButton("Apply edit")
        edit_box = QGroupBox("Edit the current avatar by text")
        ef = QFormLayout(edit_box)
        ef.addRow("Change", self.edit_text)
        srow = QHBoxLayout()
        srow.addWidget(self.strength, 1)
        srow.addWidget(self.strength_label)
        ef.addRow("Strength", srow)
        ef.addRow(self.edit_button)

        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.reading_label)
        lay.addWidget(self.results, 1)
        lay.addWidget(self.use_button)
        lay.addWidget(edit_box)

        self.generate_button.clicked.connect(self.generate)
        self.prompt.returnPressed.connect(self.generate)
        self.cancel_button.clicked.connect(self.cancel)
        self.use_button.clicked.connect(self.use_selected)
        self.results.itemDoubleClicked.connect(lambda item: self.use_selected())
        self.results.currentRowChanged.connect(self._selection_changed)
        self.strength.valueChanged.connect(lambda v: self.strength_label.setText(f"{v / 100:.2f}"))
        self.edit_button.clicked.connect(self.apply_edit)
        self.edit_text.returnPressed.connect(self.apply_edit)

    # --- the model, loaded lazily on the worker ------------------------------------------------
    def _get_generator(self):
        if self._generator is None:
            if self._factory is not None:
                self._generator = self._factory()
            else:
                from core.generate.generator import shared_generator
                self._generator = shared_generator()
        return self._generator

    @property
    def busy(self) -> bool:
        return self.task is not None or self.edit_task is not None

    # --- generate -----------------------------------------------------------------------------
    def generate(self) -> None:
        if self.task is not None:
            return
        prompt, negative = self.prompt.text(), self.negative.text()
        seed, guidance, n = self.seed.value(), self.guidance.value(), self.count.value()
        self._gen_id += 1
        gid = self._gen_id
        thumbs = self.render_thumbnails

        def work(ctx):
            ctx.progress(0.0, "loading the model")
            gen = self._get_generator()

            def step(i, total):
                ctx.check()
                ctx.progress(0.6 * i / total, f"sampling {i}/{total}")
            cands = gen.generate(prompt, n=n, seed=seed, guidance=guidance, negative=negative, callback=step)
            return cands

        def done(cands):
            self.candidates = cands
            self._show_candidates(cands)
            if thumbs:
                self._start_thumbnails(gid, cands)

        self.results.clear()
        self.candidates = []
        self.use_button.setEnabled(False)
        self._set_running(True)
        self.task = self.runner.start("Generate avatars", work, on_done=done, on_error=self._failed,
                                      on_cancel=lambda: self.status_changed.emit("generation cancelled"))
        self.task.signals.progress.connect(lambda f, s: self.progress.setValue(int(100 * f)))
        self.task.signals.done.connect(lambda t=self.task: self._task_ended(t))

    def _start_thumbnails(self, gid: int, cands: list) -> None:
        relay = self._relay
        model = getattr(self._generator, "face_model", None)   # its template mesh is cached

        def work(ctx):
            from core.generate.preview import render_avatar
            for i, c in enumerate(cands):
                ctx.check()
                ctx.progress(0.6 + 0.4 * i / len(cands), f"thumbnail {i + 1}/{len(cands)}")
                relay.thumbnail.emit(gid, i, render_avatar(c.to_avatar(), THUMB, face_model=model))
            return None
        self._set_running(True)
        self.task = self.runner.start("Render thumbnails", work, on_error=self._failed)
        self.task.signals.progress.connect(lambda f, s: self.progress.setValue(int(100 * f)))
        self.task.signals.done.connect(lambda t=self.task: self._task_ended(t))

    def _show_candidates(self, cands: list) -> None:
        self.results.clear()
        if not cands:
            return
        r = cands[0].reading
        self.reading_label.setText(r.summary())
        targeted = ", ".join(f"{a} {'+' if v > 0 else '-' if v < 0 else '='}" for a, v in
                             {**r.relative, **r.targets}.items()) or "nothing (prior sample)"
        for i, c in enumerate(cands):
            item = QListWidgetItem(f"#{i + 1}")
            item.setToolTip(f"targeted: {targeted}" + (f"; hair style {r.style}" if r.style else "")
                            + (f"; expression {r.expression}" if r.expression else ""))
            pm = QPixmap(THUMB, THUMB)
            pm.fill(Qt.darkGray)
            item.setIcon(QIcon(pm))
            self.results.addItem(item)
        self.results.setCurrentRow(0)
        self.status_changed.emit(f"generated {len(cands)} candidates: {r.summary()}")

    def _thumbnail_ready(self, gid: int, index: int, img) -> None:
        if gid != self._gen_id or index >= self.results.count():
            return  # a stale generation
        self.results.item(index).setIcon(QIcon(_pixmap(img)))

    def _selection_changed(self, row: int) -> None:
        self.use_button.setEnabled(0 <= row < len(self.candidates))

    def use_selected(self) -> None:
        row = self.results.currentRow()
        if not 0 <= row < len(self.candidates):
            return
        prompt = self.prompt.text().strip()
        name = (prompt[:40] or "Generated") + (f" #{row + 1}" if len(self.candidates) > 1 else "")
        self.picked.emit(self.candidates[row].to_avatar(name=name))

    def cancel(self) -> None:
        for t in (self.task, self.edit_task):
            if t is not None:
                t.cancel()

    def _failed(self, message: str) -> None:
        self.reading_label.setText(f"error: {message}")
        self.status_changed.emit(f"error: {message}")

    def _set_running(self, running: bool) -> None:
        self.generate_button.setEnabled(not running)
        self.edit_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        if not running:
            self.progress.setValue(0)

    def _task_ended(self, task) -> None:
        if self.task is not task:   # generation ended after starting its thumbnails' task
            return
        self.task = None
        if self.edit_task is None:
            self._set_running(False)

    # --- edit ---------------------------------------------------------------------------------
    def apply_edit(self) -> None:
        if self.busy:
            return
        text = self.edit_text.text()
        strength = self.strength.value() / 100.0
        snapshot = Avatar(self.avatar.identity, self.avatar.expression, texture=self.avatar.texture,
                          appearance=self.avatar.appearance, eyes=self.avatar.eyes, hair=self.avatar.hair)

        def work(ctx):
            ctx.progress(0.0, "loading the model")
            gen = self._get_generator()
            return gen.edit(snapshot, text, strength=strength, seed=self.seed.value(),
                            guidance=self.guidance.value(),
                            callback=lambda i, n: (ctx.check(), ctx.progress(i / max(n, 1), "editing")))

        def done(cand):
            a = self.avatar
            a.set_identity(cand.identity)
            if cand.appearance is not None:
                a.set_appearance(cand.appearance)
            a.set_hair(cand.hair)
            a.set_eyes(**cand.eyes.to_dict())
            a.set_expression(cand.expression)
            self.reading_label.setText(cand.reading.summary())
            self.status_changed.emit(f"edited: {cand.reading.summary()}")

        self._set_running(True)
        self.edit_task = self.runner.start("Edit by text", work, on_done=done, on_error=self._failed)
        self.edit_task.signals.progress.connect(lambda f, s: self.progress.setValue(int(100 * f)))

        def ended():
            self.edit_task = None
            if self.task is None:
                self._set_running(False)
        self.edit_task.signals.done.connect(ended)
