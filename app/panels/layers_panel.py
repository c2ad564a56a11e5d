"""Layers panel (the paint layer stack, top layer first) and History panel (undo list).

Every change goes through the LayerStack's undoable operations; the panels only mirror the
stack (rebuilt on `layers_changed` / `history_changed`)."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QLabel, QListWidget,
                               QListWidgetItem, QPushButton, QSlider, QSpinBox, QToolButton,
                               QVBoxLayout, QWidget)

from core.paint import BLEND_MODES, PaintError


class LayersPanel(QWidget):
    import_requested = Signal()

    def __init__(self, controller, parent=None) -> None:
        super().__init__(parent)
        self.c = controller
        lay = QVBoxLayout(self)
        self.list = QListWidget()
        self.list.setToolTip("Top layer first. Check: visible. Double-click: rename.")
        self.list.currentRowChanged.connect(self._select)
        self.list.itemChanged.connect(self._item_changed)
        lay.addWidget(self.list, 1)
        row = QHBoxLayout()
        self.buttons = {}
        for key, text, tip, fn in (
                ("add", "+", "Add an empty layer above the current one", self.add),
                ("delete", "−", "Delete the current layer", self.delete),
                ("duplicate", "⧉", "Duplicate the current layer", self.duplicate),
                ("up", "▲", "Move the layer up", lambda: self.move(+1)),
                ("down", "▼", "Move the layer down", lambda: self.move(-1))):
            b = QToolButton(text=text, toolTip=tip)
            b.clicked.connect(fn)
            row.addWidget(b)
            self.buttons[key] = b
        self.lock = QToolButton(text="Lock", checkable=True, toolTip="Lock the layer against painting")
        self.lock.toggled.connect(lambda on: self._set(locked=on))
        row.addWidget(self.lock)
        lay.addLayout(row)
        form = QFormLayout()
        self.opacity = QSlider(Qt.Horizontal, minimum=0, maximum=100)
        self.opacity.sliderReleased.connect(lambda: self._set(opacity=self.opacity.value() / 100))
        self.opacity.valueChanged.connect(self._opacity_changed)
        form.addRow("Opacity", self.opacity)
        self.blend = QComboBox()
        self.blend.addItems([m.capitalize() for m in BLEND_MODES])
        self.blend.textActivated.connect(lambda t: self._set(blend=t.lower()))
        form.addRow("Blend", self.blend)
        mrow = QHBoxLayout()
        self.add_mask = QPushButton("Add Mask")
        self.add_mask.clicked.connect(self.toggle_mask)
        self.paint_mask = QCheckBox("Paint on mask")
        self.paint_mask.setToolTip("Brush reveals, eraser hides the layer")
        self.paint_mask.toggled.connect(lambda on: setattr(self.c, "paint_mask", on))
        mrow.addWidget(self.add_mask)
        mrow.addWidget(self.paint_mask)
        form.addRow("Mask", mrow)
        lay.addLayout(form)
        imp = QPushButton("Import Image/PSD as Layers…")
        imp.clicked.connect(self.import_requested)
        lay.addWidget(imp)
        self.c.layers_changed.connect(self.rebuild)
        self.rebuild()

    # ------------------------------------------------------------------ view of the stack
    def _row_to_index(self, row: int) -> int:
        return len(self.c.stack.layers) - 1 - row

    def rebuild(self) -> None:
        layers = self.c.stack.layers
        self.list.blockSignals(True)
        self.list.clear()
        for layer in reversed(layers):
            extra = []
            if layer.blend != "normal":
                extra.append(layer.blend)
            if layer.opacity < 1:
                extra.append(f"{layer.opacity:.0%}")
            if layer.mask is not None:
                extra.append("mask")
            if layer.locked:
                extra.append("locked")
            it = QListWidgetItem(layer.name + (f"   ({', '.join(extra)})" if extra else ""))
            it.setData(Qt.UserRole, layer.id)
            it.setFlags(it.flags() | Qt.ItemIsUserCheckable | Qt.ItemIsEditable)
            it.setCheckState(Qt.Checked if layer.visible else Qt.Unchecked)
            self.list.addItem(it)
        if layers:
            self.list.setCurrentRow(self._row_to_index(self.c.layer_index))
        self.list.blockSignals(False)
        self._sync_controls()

    def _sync_controls(self) -> None:
        layer = self.c.current_layer()
        for w in (self.opacity, self.blend, self.lock, self.add_mask, self.paint_mask):
            w.setEnabled(layer is not None)
        for k in ("delete", "duplicate", "up", "down"):
            self.buttons[k].setEnabled(layer is not None)
        if layer is None:
            return
        for w in (self.opacity, self.blend, self.lock):
            w.blockSignals(True)
        self.opacity.setValue(int(round(layer.opacity * 100)))
        self.blend.setCurrentText(layer.blend.capitalize())
        self.lock.setChecked(layer.locked)
        for w in (self.opacity, self.blend, self.lock):
            w.blockSignals(False)
        self.add_mask.setText("Remove Mask" if layer.mask is not None else "Add Mask")
        if layer.mask is None and self.paint_mask.isChecked():
            self.paint_mask.setChecked(False)

    def _select(self, row: int) -> None:
        if row >= 0:
            self.c.layer_index = self._row_to_index(row)
            self._sync_controls()

    def _item_changed(self, item: QListWidgetItem) -> None:
        idx = self._row_to_index(self.list.row(item))
        layer = self.c.stack.layers[idx]
        visible = item.checkState() == Qt.Checked
        name = item.text().split("   (")[0].strip()
        if visible != layer.visible:
            self._set(index=idx, visible=visible)
        elif name and name != layer.name:
            self._set(index=idx, name=name)

    def _opacity_changed(self, v: int) -> None:
        if not self.opacity.isSliderDown():   # keyboard, wheel, or a test: apply at once
            self._set(opacity=v / 100)

    # ------------------------------------------------------------------ operations
    def _set(self, index: int | None = None, **changes) -> None:
        i = self.c.layer_index if index is None else index
        if not self.c.stack.layers:
            return
        layer = self.c.stack.layers[i]
        if all(getattr(layer, k) == v for k, v in changes.items() if k != "mask"):
            if "mask" not in changes:
                return
        try:
            self.c.stack.set_layer(i, **changes)
        except PaintError as exc:
            self.c.status.emit(str(exc))

    def add(self) -> None:
        pos = self.c.layer_index + 1 if self.c.stack.layers else 0
        self.c.stack.add_layer(index=pos)
        self.c.layer_index = pos
        self.rebuild()

    def delete(self) -> None:
        if self.c.stack.layers:
            self.c.stack.delete_layer(self.c.layer_index)

    def duplicate(self) -> None:
        if self.c.stack.layers:
            self.c.stack.duplicate_layer(self.c.layer_index)
            self.c.layer_index += 1
            self.rebuild()

    def move(self, step: int) -> None:
        i = self.c.layer_index
        j = i + step
        if self.c.stack.layers and 0 <= j < len(self.c.stack.layers):
            self.c.stack.move_layer(i, j)
            self.c.layer_index = j
            self.rebuild()

    def rename(self, name: str) -> None:
        self._set(name=name)

    def toggle_mask(self) -> None:
        layer = self.c.current_layer()
        if layer is None:
            return
        if layer.mask is None:   # a white mask: shows everything until painted
            self._set(mask=np.full((self.c.stack.size,) * 2, 255, np.uint8))
        else:
            self._set(mask=None)


class HistoryPanel(QWidget):
    def __init__(self, controller, parent=None) -> None:
        super().__init__(parent)
        self.c = controller
        self._rows: list | None = None      # (name, bytes) of the steps listed
        self._done: list[bool] = []
        lay = QVBoxLayout(self)
        self.list = QListWidget()
        self.list.setToolTip("Click a step to go back (or forward) to it")
        self.list.itemClicked.connect(self._clicked)
        lay.addWidget(self.list, 1)
        row = QHBoxLayout()
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self.c.undo)
        self.redo_button = QPushButton("Redo")
        self.redo_button.clicked.connect(self.c.redo)
        row.addWidget(self.undo_button)
        row.addWidget(self.redo_button)
        lay.addLayout(row)
        form = QFormLayout()
        self.budget = QSpinBox(minimum=16, maximum=16384, singleStep=64, suffix=" MB")
        self.budget.setValue(self.c.stack.history.budget_bytes // 2**20)
        self.budget.setToolTip("Memory the undo history may use; the oldest steps go first")
        self.budget.editingFinished.connect(lambda: self.c.set_budget_mb(self.budget.value()))
        form.addRow("Undo memory", self.budget)
        self.usage = QLabel()
        form.addRow("In use", self.usage)
        lay.addLayout(form)
        self.c.history_changed.connect(self.rebuild)
        self.c.layers_changed.connect(self.rebuild)
        self.rebuild()

    def rebuild(self) -> None:
        h = self.c.stack.history
        entries = h.entries()
        self.list.blockSignals(True)
        rows = [(name, nbytes) for name, nbytes, _ in entries]
        if rows != self._rows:         # undo/redo only move the line between done and undone
            self._rows, self._done = rows, [True] * len(rows)
            self.list.clear()
            self.list.addItem(QListWidgetItem("Start"))
            for name, nbytes in rows:
                self.list.addItem(QListWidgetItem(f"{name}   {nbytes / 2**20:.2f} MB"))
        for i, (_, _, done) in enumerate(entries):
            if self._done[i] != done:
                self._done[i] = done
                self.list.item(i + 1).setForeground(QBrush() if done else QBrush(Qt.gray))
        self.list.setCurrentRow(len(h.done))
        self.list.blockSignals(False)
        self.undo_button.setEnabled(h.can_undo())
        self.redo_button.setEnabled(h.can_redo())
        self.usage.setText(f"{h.nbytes / 2**20:.1f} MB, {len(h.done)} steps")
        if self.budget.value() != h.budget_bytes // 2**20 and not self.budget.hasFocus():
            self.budget.setValue(h.budget_bytes // 2**20)

    def _clicked(self, item: QListWidgetItem) -> None:
        self.c.goto_history(self.list.row(item))
