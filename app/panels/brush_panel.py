"""Brush panel: tool, preset, size/hardness/opacity/flow/spacing/jitter/stabiliser, colour, pen
pressure mapping, symmetry, fill options, stencil image, paint-on-mask, project a photo."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QColorDialog, QComboBox, QFileDialog, QFormLayout,
                               QGridLayout, QHBoxLayout, QLabel, QPushButton, QSlider, QSpinBox,
                               QToolButton, QVBoxLayout, QWidget)

from core.paint import PRESETS, PaintError
from core.paint.stroke import Stencil

TOOL_LABELS = {"brush": ("Brush", "B"), "eraser": ("Eraser", "E"), "smudge": ("Smudge", "S"),
               "blur": ("Blur", "R"), "clone": ("Clone", "C"), "fill": ("Fill", "G"),
               "eyedropper": ("Eyedropper", "I"), "stencil": ("Stencil", "T")}
# slider: (attribute, label, minimum, maximum, scale: slider units per value unit)
SLIDERS = (("size", "Size (px)", 1, 400, 1), ("hardness", "Hardness", 0, 100, 100),
           ("opacity", "Opacity", 0, 100, 100), ("flow", "Flow", 1, 100, 100),
           ("spacing", "Spacing", 1, 300, 100), ("jitter", "Jitter", 0, 300, 100),
           ("stabiliser", "Stabiliser", 0, 100, 1), ("strength", "Smudge/blur", 0, 100, 100))


class BrushPanel(QWidget):
    project_photo_requested = Signal(str)   # a photo path: project it onto the current view
    paint_mode_toggled = Signal(bool)

    def __init__(self, controller, parent=None) -> None:
        super().__init__(parent)
        self.c = controller
        lay = QVBoxLayout(self)
        self.paint_mode = QCheckBox("Paint in the 3D view (Alt+drag orbits)")
        self.paint_mode.toggled.connect(self.paint_mode_toggled)
        lay.addWidget(self.paint_mode)
        grid = QGridLayout()
        self.tool_group = QButtonGroup(self, exclusive=True)
        self.tool_buttons: dict[str, QToolButton] = {}
        for i, (tool, (label, key)) in enumerate(TOOL_LABELS.items()):
            b = QToolButton(text=label, checkable=True, toolTip=f"{label} ({key})")
            b.setShortcut(key)
            b.setToolButtonStyle(Qt.ToolButtonTextOnly)
            b.clicked.connect(lambda c=False, t=tool: self.c.set_tool(t))
            self.tool_group.addButton(b)
            self.tool_buttons[tool] = b
            grid.addWidget(b, i // 4, i % 4)
        lay.addLayout(grid)
        form = QFormLayout()
        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        self.preset.textActivated.connect(self.c.apply_preset)
        form.addRow("Preset", self.preset)
        self.colour = QPushButton()
        self.colour.clicked.connect(self.choose_colour)
        form.addRow("Colour", self.colour)
        self.sliders: dict[str, tuple[QSlider, QLabel, int]] = {}
        for attr, label, lo, hi, k in SLIDERS:
            s = QSlider(Qt.Horizontal, minimum=lo, maximum=hi)
            v = QLabel(minimumWidth=36)
            s.valueChanged.connect(lambda val, a=attr, kk=k: self._slider(a, val / kk))
            row = QHBoxLayout()
            row.addWidget(s)
            row.addWidget(v)
            form.addRow(label, row)
            self.sliders[attr] = (s, v, k)
        self.pressure_size = QCheckBox("size")
        self.pressure_opacity = QCheckBox("opacity")
        self.pressure_size.toggled.connect(lambda on: self.c.set_brush(pressure_size=on))
        self.pressure_opacity.toggled.connect(lambda on: self.c.set_brush(pressure_opacity=on))
        row = QHBoxLayout()
        row.addWidget(self.pressure_size)
        row.addWidget(self.pressure_opacity)
        form.addRow("Pen pressure", row)
        self.symmetry = QCheckBox("Mirror left/right (through the UV mirror map)")
        self.symmetry.toggled.connect(self._symmetry)
        form.addRow("Symmetry", self.symmetry)
        self.fill_mode = QComboBox()
        self.fill_mode.addItems(["UV island", "Similar colour"])
        self.fill_mode.currentIndexChanged.connect(
            lambda i: setattr(self.c, "fill_mode", "island" if i == 0 else "colour"))
        self.tolerance = QSpinBox(minimum=0, maximum=255, value=self.c.fill_tolerance)
        self.tolerance.valueChanged.connect(lambda v: setattr(self.c, "fill_tolerance", v))
        row = QHBoxLayout()
        row.addWidget(self.fill_mode)
        row.addWidget(QLabel("tolerance"))
        row.addWidget(self.tolerance)
        form.addRow("Fill", row)
        self.stencil_label = QLabel("none")
        b = QPushButton("Choose…")
        b.clicked.connect(self.choose_stencil)
        stamp = QPushButton("Stamp decal")
        stamp.setToolTip("Stamp the whole stencil image at its position (Ctrl+click places it)")
        stamp.clicked.connect(lambda: self.c.stamp_decal())
        row = QHBoxLayout()
        row.addWidget(self.stencil_label, 1)
        row.addWidget(b)
        row.addWidget(stamp)
        form.addRow("Stencil", row)
        lay.addLayout(form)
        self.project = QPushButton("Project a Photo onto the View…")
        self.project.setToolTip("Lay a photo over the current 3D view and paint it onto every visible texel (a new layer)")
        self.project.clicked.connect(self.choose_photo)
        lay.addWidget(self.project)
        self.message = QLabel(wordWrap=True)
        self.message.setStyleSheet("color: #c9a227")
        lay.addWidget(self.message)
        lay.addStretch(1)
        self.c.brush_changed.connect(self.sync)
        self.c.status.connect(self.message.setText)
        self.c.colour_picked.connect(lambda rgb: self.sync())
        self.sync()

    def _slider(self, attr: str, value: float) -> None:
        if getattr(self.c.brush, attr) != value:
            self.c.set_brush(**{attr: value})

    def _symmetry(self, on: bool) -> None:
        self.c.symmetry = on
        if on:
            self.c.enable_3d(True)    # the mirror map comes with the texel map

    def sync(self) -> None:
        b = self.c.brush
        self.tool_buttons[self.c.tool].setChecked(True)
        for attr, (s, v, k) in self.sliders.items():
            val = getattr(b, attr)
            s.blockSignals(True)
            s.setValue(int(round(val * k)))
            s.blockSignals(False)
            v.setText(f"{val:.0f}" if k == 1 else f"{val:.2f}")
        for box, on in ((self.pressure_size, b.pressure_size), (self.pressure_opacity, b.pressure_opacity)):
            box.blockSignals(True)
            box.setChecked(on)
            box.blockSignals(False)
        r, g, bl = b.colour
        self.colour.setText(f"#{r:02x}{g:02x}{bl:02x}")
        fg = "black" if 0.3 * r + 0.59 * g + 0.11 * bl > 128 else "white"
        self.colour.setStyleSheet(f"background: rgb({r},{g},{bl}); color: {fg}")
        if self.preset.currentText() != self.c.preset:
            self.preset.setCurrentText(self.c.preset)

    def choose_colour(self) -> None:
        col = QColorDialog.getColor(QColor(*self.c.brush.colour), self, "Brush colour")
        if col.isValid():
            self.c.set_colour((col.red(), col.green(), col.blue()))

    def choose_stencil(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Stencil image", "", "Images (*.png *.jpg *.jpeg)")
        if name:
            self.load_stencil(name)

    def load_stencil(self, path: str) -> bool:
        from core.paint.files import read_image
        try:
            img = read_image(path)
        except PaintError as exc:
            self.message.setText(str(exc))
            return False
        size = self.c.stack.size
        x = self.c.stencil.x if self.c.stencil else (size - img.shape[1]) // 2
        y = self.c.stencil.y if self.c.stencil else (size - img.shape[0]) // 2
        self.c.stencil = Stencil(img, x, y)
        self.stencil_label.setText(f"{Path(path).name} ({img.shape[1]}x{img.shape[0]})")
        return True

    def choose_photo(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Project a photo", "", "Images (*.png *.jpg *.jpeg)")
        if name:
            self.project_photo_requested.emit(name)
