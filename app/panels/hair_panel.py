"""Hair: style, length, hairline, colour (button + presets) and grey, editing Avatar.set_hair.

Geometry (style, length, hairline) is rebuilt off the GUI thread by the FaceSession; colour and
grey are shader uniforms and show at once.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QColorDialog, QComboBox, QFormLayout, QGridLayout, QLabel,
                               QPushButton, QSlider, QVBoxLayout, QWidget)

from core.avatar import Avatar
from core.head.settings import HAIR_STYLES

STEPS = 100
# Display RGB in [0, 1] (what HairStyle.colour holds), as hairdressers name them.
PRESETS = {
    "Black": (0.05, 0.045, 0.04),
    "Dark brown": (0.23, 0.15, 0.09),
    "Brown": (0.40, 0.27, 0.16),
    "Auburn": (0.50, 0.22, 0.11),
    "Red": (0.66, 0.30, 0.14),
    "Blond": (0.82, 0.66, 0.42),
    "Platinum": (0.90, 0.86, 0.76),
    "Grey": (0.55, 0.55, 0.54),
    "White": (0.92, 0.92, 0.90),
}
STYLE_LABELS = {"bald": "Bald", "buzz": "Buzz cut", "short": "Short", "medium": "Medium",
                "long": "Long", "tied": "Tied back"}


def _swatch(rgb) -> str:
    r, g, b = (int(round(c * 255)) for c in rgb)
    light = 0.3 * r + 0.59 * g + 0.11 * b > 140
    return (f"background-color: rgb({r},{g},{b}); color: {'black' if light else 'white'};"
            " border: 1px solid #555; padding: 3px;")


class HairPanel(QWidget):
    def __init__(self, avatar: Avatar, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.avatar = avatar
        self._syncing = False
        self.style_combo = QComboBox(objectName="hairStyle")
        for key in HAIR_STYLES:
            self.style_combo.addItem(STYLE_LABELS.get(key, key), key)
        self.style_combo.currentIndexChanged.connect(
            lambda i: self._set(style=self.style_combo.itemData(i)))
        self.length = self._slider("hairLength", 0, STEPS, "Length within the style (a buzz cut's "
                                   "stubble to a long style's shoulder length)")
        self.hairline = self._slider("hairline", -STEPS, STEPS, "Front hairline: lower (left) or "
                                     "receding (right)")
        self.grey = self._slider("hairGrey", 0, STEPS, "Share of grey and white strands")
        # Geometry sliders wait for a short pause (each change rebuilds the hair off-thread);
        # grey is a uniform and applies at once.
        self._geometry_timer = QTimer(self, singleShot=True, interval=150, timeout=self._apply_geometry)
        self.length.valueChanged.connect(lambda v: self._geometry_timer.start())
        self.hairline.valueChanged.connect(lambda v: self._geometry_timer.start())
        self.grey.valueChanged.connect(lambda v: self._set(grey=v / STEPS))
        self.colour_button = QPushButton("Colour…", objectName="hairColour")
        self.colour_button.setToolTip("Pick the hair colour")
        self.colour_button.clicked.connect(self.pick_colour)

        form = QFormLayout()
        form.addRow("Style", self.style_combo)
        form.addRow("Length", self.length)
        form.addRow("Hairline", self.hairline)
        form.addRow("Colour", self.colour_button)
        form.addRow("Grey", self.grey)
        presets = QGridLayout()
        self.preset_buttons: dict[str, QPushButton] = {}
        for i, (name, rgb) in enumerate(PRESETS.items()):
            b = QPushButton(name, objectName=f"hairPreset{name.replace(' ', '')}")
            b.setStyleSheet(_swatch(rgb))
            b.clicked.connect(lambda _=False, rgb=rgb: self._set(colour=rgb))
            presets.addWidget(b, i // 3, i % 3)
            self.preset_buttons[name] = b
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Presets"))
        layout.addLayout(presets)
        layout.addStretch(1)
        for event in ("hair", "replaced"):
            avatar.events.connect(event, lambda a: self.sync())
        self.sync()

    def _slider(self, name: str, lo: int, hi: int, tip: str) -> QSlider:
        s = QSlider(Qt.Horizontal, minimum=lo, maximum=hi, objectName=name)
        s.setToolTip(tip)
        return s

    def _set(self, **changes) -> None:
        if not self._syncing:
            self.avatar.set_hair(**changes)

    def _apply_geometry(self) -> None:
        self._set(length=self.length.value() / STEPS, hairline=self.hairline.value() / STEPS)

    def pick_colour(self) -> None:
        c = QColor.fromRgbF(*self.avatar.hair.colour)
        chosen = QColorDialog.getColor(c, self, "Hair colour")
        if chosen.isValid():
            self._set(colour=(chosen.redF(), chosen.greenF(), chosen.blueF()))

    def sync(self) -> None:
        """Show the document's hair (after an edit, File > Open, undo...)."""
        h = self.avatar.hair
        self._syncing = True
        try:
            self.style_combo.setCurrentIndex(max(0, self.style_combo.findData(h.style)))
            if not self._geometry_timer.isActive():      # not while the user drags
                self.length.setValue(round(h.length * STEPS))
                self.hairline.setValue(round(h.hairline * STEPS))
            self.grey.setValue(round(h.grey * STEPS))
            self.colour_button.setStyleSheet(_swatch(h.colour))
            bald = h.style == "bald"
            for w in (self.length, self.hairline, self.grey, self.colour_button):
                w.setEnabled(not bald)
        finally:
            self._syncing = False
