"""Appearance: the leading texture-code components as sliders, random appearance, the mean, and
the eyes (iris colour, pupil size). Edits go through the Avatar's setters (napari style)."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QColorDialog, QComboBox, QGridLayout, QHBoxLayout, QLabel,
                               QMessageBox, QPushButton, QSlider, QSpinBox, QVBoxLayout, QWidget)

from core.avatar import Avatar

from .sigma_sliders import SigmaSliders

IRIS_PRESETS = {"brown": (0.30, 0.20, 0.11), "dark brown": (0.16, 0.10, 0.06),
                "hazel": (0.42, 0.33, 0.16), "green": (0.28, 0.40, 0.22),
                "blue": (0.30, 0.45, 0.65), "grey": (0.45, 0.48, 0.50)}


class AppearancePanel(QWidget):
    def __init__(self, avatar: Avatar, model, dims: int = 10, parent: QWidget | None = None) -> None:
        """`model`: core.appearance.AppearanceModel, or None when it could not be loaded."""
        super().__init__(parent)
        self.avatar, self.model = avatar, model
        self.rng = np.random.default_rng()
        self.dims = 0 if model is None else min(dims, model.num_components)
        explained = (model.meta.get("explained_variance", []) if model is not None else [])

        def tip(i: int) -> str:
            share = f" ({explained[i]:.0%} of the variation seen in real faces)" if i < len(explained) else ""
            return f"Texture component {i + 1}{share}, in prior standard deviations"

        self.rows = SigmaSliders(self.dims, short=lambda i: f"t{i + 1}",
                                 object_name=lambda i: f"appearance{i}", tooltip=tip,
                                 moved=self._slider_moved)
        self.sliders = self.rows.sliders

        self.temperature = QSpinBox(minimum=10, maximum=150, value=100, singleStep=10, suffix=" %")
        self.temperature.setToolTip("Sampling temperature: lower gives more average skin")
        self.random_btn = QPushButton("Random appearance")
        self.random_btn.clicked.connect(self.random_appearance)
        self.mean_btn = QPushButton("Mean")
        self.mean_btn.setToolTip("The mean appearance of the real faces the model learned from")
        self.mean_btn.clicked.connect(lambda: self.avatar.set_appearance(None))
        buttons = QHBoxLayout()
        buttons.addWidget(self.random_btn)
        buttons.addWidget(QLabel("temp"))
        buttons.addWidget(self.temperature)
        buttons.addWidget(self.mean_btn)

        self.photo_note = QLabel(wordWrap=True)
        self.drop_photo_btn = QPushButton("Use the appearance code alone")
        self.drop_photo_btn.setToolTip("Drop the photo/painted texture; the code (fitted to the photo) remains")
        self.drop_photo_btn.clicked.connect(self._drop_texture)

        # eyes
        self.iris_preset = QComboBox(objectName="irisPreset")
        self.iris_preset.addItems(["custom…", *IRIS_PRESETS])
        self.iris_preset.activated.connect(self._iris_preset_chosen)
        self.iris_swatch = QPushButton(objectName="irisColour")
        self.iris_swatch.setToolTip("Iris colour")
        self.iris_swatch.clicked.connect(self._pick_iris)
        self.pupil = QSlider(Qt.Horizontal, minimum=10, maximum=90, objectName="pupilSize")
        self.pupil.setToolTip("Pupil size, as a share of the iris radius")
        self.pupil.valueChanged.connect(lambda v: self.avatar.set_eyes(pupil_size=v / 100.0))
        eyes = QGridLayout()
        eyes.addWidget(QLabel("Iris"), 0, 0)
        eyes.addWidget(self.iris_preset, 0, 1)
        eyes.addWidget(self.iris_swatch, 0, 2)
        eyes.addWidget(QLabel("Pupil"), 1, 0)
        eyes.addWidget(self.pupil, 1, 1, 1, 2)

        layout = QVBoxLayout(self)
        if model is None:
            layout.addWidget(QLabel("The appearance model could not be loaded (see the log); "
                                    "avatars show the default skin.", wordWrap=True))
        layout.addLayout(buttons)
        layout.addLayout(self.rows.grid)
        layout.addWidget(self.photo_note)
        layout.addWidget(self.drop_photo_btn)
        layout.addWidget(QLabel("<b>Eyes</b>"))
        layout.addLayout(eyes)
        if model is not None:
            layout.addWidget(QLabel(f"Showing {self.dims} of {model.num_components} texture components, "
                                    f"learned from {model.meta.get('samples', '?')} real photos.", wordWrap=True))
        layout.addStretch(1)
        for event in ("appearance", "texture", "eyes", "replaced"):
            avatar.events.connect(event, lambda a: self.sync())
        self.sync()

    # --- actions --------------------------------------------------------------------------------
    def random_appearance(self) -> None:
        if self.model is not None:
            t = self.temperature.value() / 100.0
            self.avatar.set_appearance(self.model.sample(self.rng, temperature=t))

    def _code(self) -> np.ndarray:
        code = self.avatar.appearance
        k = self.model.num_components
        if code is None:
            return np.zeros(k, np.float32)
        return code[:k] if code.size >= k else np.pad(code, (0, k - code.size))

    def _slider_moved(self, i: int, sigma: float) -> None:
        code = self._code()
        code[i] = sigma
        self.avatar.set_appearance(code)

    def _drop_texture(self) -> None:
        answer = QMessageBox.question(
            self, "Use the appearance code alone",
            "Drop the avatar's photo/painted texture and show what its appearance code decodes to? "
            "The photo's detail is lost unless the project is reloaded without saving.")
        if answer == QMessageBox.Yes:
            self.avatar.set_texture(None)

    def _iris_preset_chosen(self, index: int) -> None:
        name = self.iris_preset.itemText(index)
        if name in IRIS_PRESETS:
            self.avatar.set_eyes(iris_colour=IRIS_PRESETS[name])
        else:
            self._pick_iris()

    def _pick_iris(self) -> None:
        r, g, b = self.avatar.eyes.iris_colour
        colour = QColorDialog.getColor(QColor.fromRgbF(r, g, b), self, "Iris colour")
        if colour.isValid():
            self.avatar.set_eyes(iris_colour=(colour.redF(), colour.greenF(), colour.blueF()))

    # --- view -----------------------------------------------------------------------------------
    def sync(self) -> None:
        has_photo = self.avatar.texture is not None
        self.photo_note.setVisible(has_photo)
        self.drop_photo_btn.setVisible(has_photo)
        self.photo_note.setText("This avatar shows a photo or painted texture; the sliders change "
                                "its appearance code, which shows once that texture is dropped.")
        for s in self.sliders:
            s.setEnabled(not has_photo)
        self.random_btn.setEnabled(self.model is not None and not has_photo)
        self.mean_btn.setEnabled(self.model is not None and not has_photo)
        if self.model is not None:
            self.rows.show(self._code()[:self.dims])
        eyes = self.avatar.eyes
        r, g, b = (int(c * 255) for c in eyes.iris_colour)
        self.iris_swatch.setStyleSheet(f"background-color: rgb({r},{g},{b}); min-width: 40px;")
        match = [n for n, c in IRIS_PRESETS.items() if np.allclose(c, eyes.iris_colour, atol=1e-3)]
        self.iris_preset.blockSignals(True)
        self.iris_preset.setCurrentText(match[0] if match else "custom…")
        self.iris_preset.blockSignals(False)
        self.pupil.blockSignals(True)
        self.pupil.setValue(int(round(eyes.pupil_size * 100)))
        self.pupil.blockSignals(False)
