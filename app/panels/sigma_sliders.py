"""A column of sliders over a code's prior standard deviations (identity, appearance): each
spans ±RANGE σ and shows its value beside it."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QSlider

RANGE = 3.0   # a slider spans ±3 prior standard deviations
STEPS = 300


class SigmaSliders:
    def __init__(self, count: int, short: Callable[[int], str], object_name: Callable[[int], str],
                 tooltip: Callable[[int], str], moved: Callable[[int, float], None]):
        """`moved(i, sigma)` when the user drags slider i (not when `show` sets it)."""
        self.grid = QGridLayout()
        self.sliders: list[QSlider] = []
        self.labels: list[QLabel] = []
        self._moved = moved
        for i in range(count):
            s = QSlider(Qt.Horizontal, minimum=-STEPS, maximum=STEPS, objectName=object_name(i))
            s.setToolTip(tooltip(i))
            s.valueChanged.connect(lambda v, i=i: self._changed(i, v))
            value = QLabel("+0.00σ", minimumWidth=48, alignment=Qt.AlignRight | Qt.AlignVCenter)
            self.grid.addWidget(QLabel(short(i)), i, 0)
            self.grid.addWidget(s, i, 1)
            self.grid.addWidget(value, i, 2)
            self.sliders.append(s)
            self.labels.append(value)

    def _changed(self, i: int, v: int) -> None:
        sigma = v / STEPS * RANGE
        self.labels[i].setText(f"{sigma:+.2f}σ")
        self._moved(i, sigma)

    def show(self, sigmas: Sequence[float]) -> None:
        """Set the sliders to these values (σ) without reporting them as moves."""
        for s, label, x in zip(self.sliders, self.labels, sigmas):
            v = int(round(np.clip(x / RANGE, -1, 1) * STEPS))
            if s.value() != v:
                s.blockSignals(True)
                s.setValue(v)
                s.blockSignals(False)
            label.setText(f"{x:+.2f}σ")
