"""The 53 ARKit expression sliders, grouped by face region, with a filter, reset and presets."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QScrollArea, QSlider, QVBoxLayout, QWidget)

from core.avatar import Avatar
from core.expressions import PRESETS, REGIONS, parse_expression

STEPS = 1000  # slider resolution: weights in [0, 1] at 0.001


class ExpressionPanel(QWidget):
    def __init__(self, avatar: Avatar, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.avatar = avatar
        self.sliders: dict[str, QSlider] = {}
        self._values: dict[str, QLabel] = {}
        self._rows: dict[str, tuple[QWidget, ...]] = {}
        self._groups: dict[str, QGroupBox] = {}

        self.filter = QLineEdit(placeholderText="Filter (e.g. jaw, blink, _L)", clearButtonEnabled=True)
        self.filter.textChanged.connect(self.apply_filter)
        self.presets = QComboBox()
        self.presets.addItem("Preset…")
        self.presets.addItems([p for p in PRESETS])
        self.presets.activated.connect(self._preset_chosen)
        self.reset_button = reset = QPushButton("Reset", toolTip="Set all expression weights to 0 (neutral)")
        reset.clicked.connect(lambda: self.avatar.set_expression(parse_expression("")))
        top = QHBoxLayout()
        top.addWidget(self.filter, 1)
        top.addWidget(self.presets)
        top.addWidget(reset)

        body = QWidget()
        col = QVBoxLayout(body)
        col.setContentsMargins(0, 0, 0, 0)
        for region, names in REGIONS.items():
            box = QGroupBox(region.capitalize())
            grid = QGridLayout(box)
            grid.setVerticalSpacing(2)
            for row, name in enumerate(names):
                label = QLabel(name)
                slider = QSlider(Qt.Horizontal, minimum=0, maximum=STEPS, objectName=name)
                slider.setToolTip(f"{name} (ARKit blendshape weight 0…1)")
                value = QLabel("0.00", minimumWidth=32, alignment=Qt.AlignRight | Qt.AlignVCenter)
                slider.valueChanged.connect(lambda v, n=name: self._slider_moved(n, v))
                grid.addWidget(label, row, 0)
                grid.addWidget(slider, row, 1)
                grid.addWidget(value, row, 2)
                self.sliders[name], self._values[name] = slider, value
                self._rows[name] = (label, slider, value)
            col.addWidget(box)
            self._groups[region] = box
        col.addStretch(1)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(body)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(scroll, 1)
        avatar.events.connect("expression", lambda a: self.sync())
        avatar.events.connect("replaced", lambda a: self.sync())
        self.sync()

    def _slider_moved(self, name: str, value: int) -> None:
        self._values[name].setText(f"{value / STEPS:.2f}")
        self.avatar.set_weight(name, value / STEPS)

    def _preset_chosen(self, index: int) -> None:
        if index > 0:
            self.avatar.set_expression(parse_expression(self.presets.itemText(index)))
        self.presets.setCurrentIndex(0)

    def sync(self) -> None:
        """Show the document's weights (document -> widgets; never writes back)."""
        for name, slider in self.sliders.items():
            w = self.avatar.weight(name)
            v = int(round(w * STEPS))
            if slider.value() != v:
                slider.blockSignals(True)
                slider.setValue(v)
                slider.blockSignals(False)
            self._values[name].setText(f"{w:.2f}")

    def apply_filter(self, text: str) -> None:
        words = text.lower().split()
        for region, box in self._groups.items():
            visible = 0
            for name in REGIONS[region]:
                show = all(w in name.lower() or w in region for w in words)
                for widget in self._rows[name]:
                    widget.setVisible(show)
                visible += show
            box.setVisible(visible > 0)
