"""Sliders on the first latent identity dimensions, in units of the prior's standard deviation."""
from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPushButton, QSpinBox,
                               QVBoxLayout, QWidget)

from core.avatar import Avatar

from .sigma_sliders import SigmaSliders


def prior_std(model, samples: int = 512) -> np.ndarray:
    """Per-dimension std of the identity prior: the model's own if it has one, else estimated
    from samples (sample_identity is the model's documented way to draw from the prior)."""
    for attr in ("identity_std", "prior_std"):
        std = getattr(model, attr, None)
        if std is not None:
            std = std() if callable(std) else std
            return np.asarray(std, np.float32).reshape(-1)
    rng = np.random.default_rng(0)
    draws = np.stack([np.asarray(model.sample_identity(rng), np.float32) for _ in range(samples)])
    return np.maximum(draws.std(axis=0), 1e-6).astype(np.float32)


class IdentityPanel(QWidget):
    def __init__(self, avatar: Avatar, model, dims: int = 10, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.avatar, self.model = avatar, model
        self.mean = np.asarray(model.mean_identity(), np.float32)
        self.std = prior_std(model)
        self.dims = min(dims, self.mean.size)
        self.rng = np.random.default_rng()
        self.rows = SigmaSliders(
            self.dims, short=lambda i: f"z{i}", object_name=lambda i: f"latent{i}",
            tooltip=lambda i: f"Latent identity dimension {i}, in prior standard deviations",
            moved=self._slider_moved)
        self.sliders = self.rows.sliders

        self.temperature = QSpinBox(minimum=10, maximum=150, value=100, singleStep=10, suffix=" %")
        self.temperature.setToolTip("Sampling temperature: lower gives more average faces")
        random_btn = QPushButton("Random identity")
        random_btn.clicked.connect(self.random_identity)
        mean_btn = QPushButton("Mean")
        mean_btn.setToolTip("Back to the model's mean identity")
        mean_btn.clicked.connect(lambda: self.avatar.set_identity(self.mean))
        buttons = QHBoxLayout()
        buttons.addWidget(random_btn)
        buttons.addWidget(QLabel("temp"))
        buttons.addWidget(self.temperature)
        buttons.addWidget(mean_btn)

        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addLayout(self.rows.grid)
        self.note = QLabel(f"Showing {self.dims} of {self.mean.size} latent dimensions; "
                           "changing identity rebuilds the mesh in the background.", wordWrap=True)
        layout.addWidget(self.note)
        layout.addStretch(1)
        avatar.events.connect("identity", lambda a: self.sync())
        avatar.events.connect("replaced", lambda a: self.sync())
        self.sync()

    def random_identity(self) -> None:
        t = self.temperature.value() / 100.0
        self.avatar.set_identity(np.asarray(self.model.sample_identity(self.rng, temperature=t), np.float32))

    def _slider_moved(self, i: int, sigma: float) -> None:
        code = self.avatar.identity
        if code.size != self.mean.size:
            return
        code[i] = self.mean[i] + sigma * self.std[i]
        self.avatar.set_identity(code)

    def sync(self) -> None:
        code = self.avatar.identity
        if code.size != self.mean.size:
            return
        sig = (code[: self.dims] - self.mean[: self.dims]) / self.std[: self.dims]
        self.rows.show(sig)
