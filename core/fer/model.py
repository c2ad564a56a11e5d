"""The FER2013 expression classifier: a small VGG-style CNN on 48x48 grayscale faces.

Kept here (not in the training script) so training, inference, export and the open-set
score all build exactly the same network.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

FER_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIZE = 48


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FerNet(nn.Module):
    """A 3x3 conv stem at 48x48, then three stages of two 3x3 convs (24, 12, 6), GAP, linear head.

    `width` scales every stage (32 gives ~1.2M parameters). `features` ends at the last
    conv block so Grad-CAM can hook its 6x6 map; `embed` is the pooled feature used by the
    feature-distance open-set score.
    """

    def __init__(self, num_classes: int = len(FER_CLASSES), width: int = 32, dropout: float = 0.3):
        super().__init__()
        w = [width, width * 2, width * 4, width * 8]
        self.width = width
        self.features = nn.Sequential(
            _conv(1, w[0]), nn.MaxPool2d(2),  # one conv at 48x48: that stage dominates CPU time
            _conv(w[0], w[1]), _conv(w[1], w[1]), nn.MaxPool2d(2),
            _conv(w[1], w[2]), _conv(w[2], w[2]), nn.MaxPool2d(2),
            _conv(w[2], w[3]), _conv(w[3], w[3]),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(w[3], num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.embed(x)))


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8/float 0..255 grayscale (N,48,48) or (N,1,48,48) -> network input, roughly zero-mean."""
    x = images.float()
    if x.dim() == 3:
        x = x.unsqueeze(1)
    return (x / 255.0 - 0.5) / 0.25


def save_export(model: FerNet, path: Path, meta: dict, half: bool = True) -> Path:
    """Write an inference file: weights (float16 where `half`) plus the metadata that rebuilds it."""
    state = {k: (v.half() if half and v.is_floating_point() else v)
             for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "width": model.width, "classes": list(FER_CLASSES)[:model.head.out_features]
                if "classes" not in meta else meta["classes"], "meta": meta}, path)
    return path


def load_model(path: str | Path) -> tuple[FerNet, dict]:
    """Load an exported file or a training checkpoint; weights are cast back to float32 for CPU speed."""
    blob = torch.load(Path(path), map_location="cpu", weights_only=False)
    state = blob.get("state_dict") or blob.get("ema") or blob["model"]
    num_classes = state["head.weight"].shape[0]
    model = FerNet(num_classes=num_classes, width=int(blob.get("width", 32)))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    model.eval()
    meta = dict(blob.get("meta", {}))
    meta.setdefault("classes", blob.get("classes", list(FER_CLASSES)))
    return model, meta
