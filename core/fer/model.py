"""The FER2013 expression classifier: a small VGG-style CNN on 48x48 grayscale faces.

Kept here (not in the training script) so training, inference, export and the open-set
score all build exactly the same network.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from core.safeload import torch_load

FER_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIZE = 48


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ResBlock(nn.Module):
    """Two 3x3 convs (the first may stride) plus a shortcut (1x1 conv where the shape changes).

    Every conv sits in a (Conv2d, BatchNorm2d, ...) Sequential so BatchNorm folding finds it."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                               nn.ReLU(inplace=True))
        self.b = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.short = (nn.Identity() if cin == cout and stride == 1 else
                      nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.b(self.a(x)) + self.short(x))


ARCHS = ("vgg", "res")


class FerNet(nn.Module):
    """A 3x3 conv stem at 48x48, then three stages (24, 12, 6), GAP, linear head.

    arch "vgg": each stage is a max-pool and two 3x3 convs. arch "res": each stage is one
    residual block whose first conv strides by 2 (same resolutions and about the same
    multiply-adds, but a different function class: an ensemble member that errs differently).
    `width` scales every stage (32 gives ~1.2M parameters). `features` ends at the last
    conv block so Grad-CAM can hook its 6x6 map; `embed` is the pooled feature used by the
    feature-distance open-set score.
    """

    def __init__(self, num_classes: int = len(FER_CLASSES), width: int = 32, dropout: float = 0.3,
                 arch: str = "vgg"):
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(ARCHS)})")
        w = [width, width * 2, width * 4, width * 8]
        self.width, self.arch = width, arch
        if arch == "vgg":
            self.features = nn.Sequential(
                _conv(1, w[0]), nn.MaxPool2d(2),  # one conv at 48x48: that stage dominates CPU time
                _conv(w[0], w[1]), _conv(w[1], w[1]), nn.MaxPool2d(2),
                _conv(w[1], w[2]), _conv(w[2], w[2]), nn.MaxPool2d(2),
                _conv(w[2], w[3]), _conv(w[3], w[3]),
            )
        else:
            self.features = nn.Sequential(_conv(1, w[0]), ResBlock(w[0], w[1], 2), ResBlock(w[1], w[2], 2),
                                          ResBlock(w[2], w[3], 2))
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


def _plain(obj):
    """numpy arrays and scalars -> lists and floats, so the file loads with weights_only=True."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.ndarray, np.generic)):
        return obj.tolist()
    return obj


def save_export(models: FerNet | Sequence[FerNet], path: Path, meta: dict, half: bool = True,
                int8_models: Sequence[bytes] | None = None) -> Path:
    """Write an inference file: one or more members' weights (float16 where `half`) plus metadata,
    and optionally each member's int8 feature extractor (ONNX bytes, see core.fer.quantize),
    stored as a uint8 tensor so the file stays plain data.

    Written to a temporary name and renamed, so an interrupted export never leaves a broken model."""
    models = [models] if isinstance(models, FerNet) else list(models)
    members = [{"state_dict": {k: (v.half() if half and v.is_floating_point() else v)
                               for k, v in m.state_dict().items()}, "width": m.width, "arch": m.arch}
               for m in models]
    for member, q in zip(members, int8_models or []):
        member["int8_onnx"] = torch.frombuffer(bytearray(q), dtype=torch.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    classes = meta.get("classes", list(FER_CLASSES)[:models[0].head.out_features])
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"members": members, "classes": list(classes), "meta": _plain(meta)}, tmp)
    tmp.replace(path)
    return path


def _build(state: dict, width: int, arch: str = "vgg") -> FerNet:
    model = FerNet(num_classes=state["head.weight"].shape[0], width=int(width), arch=arch)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.eval()


def _read(path: str | Path) -> dict:
    # weights_only: a model file handed to us is never unpickled as arbitrary objects
    with warnings.catch_warnings():  # torch's own TypedStorage notice when it rebuilds int8 tensors
        warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
        blob = torch_load(Path(path))   # torch.load(weights_only=True) after a size check
    if not isinstance(blob, dict):
        raise TypeError(f"expected a dict of tensors, found {type(blob).__name__}")
    return blob


def load_models(path: str | Path) -> tuple[list[FerNet], dict]:
    """Load an exported file (one network or an ensemble) or a training checkpoint.

    Weights are cast back to float32 for CPU speed. Raises ValueError with a readable reason
    for anything that is not a model file."""
    try:
        blob = _read(path)
        if "members" in blob:
            specs = [(m["state_dict"], m["width"], m.get("arch", "vgg")) for m in blob["members"]]
        else:  # single-network export or a training checkpoint
            args = blob.get("args") or {}
            specs = [(blob.get("state_dict") or blob.get("ema") or blob["model"],
                      blob.get("width", args.get("width", 32)), blob.get("arch", args.get("arch", "vgg")))]
        models = [_build(*spec) for spec in specs]
    except Exception as exc:
        raise ValueError(f"{path} is not a usable expression model ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else 'unreadable'})") from exc
    if len({m.head.out_features for m in models}) != 1:
        raise ValueError(f"{path}: ensemble members disagree on the number of classes")
    meta, classes = blob.get("meta", {}), blob.get("classes", list(FER_CLASSES))
    if not isinstance(meta, dict) or not isinstance(classes, (list, tuple)) \
            or not all(isinstance(c, str) for c in classes):
        raise ValueError(f"{path} is not a usable expression model (damaged meta or class names)")
    meta = dict(meta)
    meta.setdefault("classes", list(classes))
    return models, meta


def ensemble_forward(models: Sequence[FerNet], x: torch.Tensor, flip: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean logits of the members and their joint feature, for normalised input `x` (N,1,48,48).

    With `flip`, each member sees the image and its mirror in one batched pass and its pooled
    features are averaged. The joint feature concatenates the members' L2-normalised features,
    scaled so the whole is unit length (each member weighs the same in the cosine similarity
    that the "feature" open-set score takes against the class means)."""
    logits, feats = [], []
    xin = torch.cat([x, x.flip(-1)]) if flip else x
    for m in models:
        f = m.embed(xin)
        if flip:
            f = (f[:len(x)] + f[len(x):]) / 2
        logits.append(m.head(f))
        feats.append(torch.nn.functional.normalize(f, dim=1))
    return torch.stack(logits).mean(0), torch.cat(feats, 1) / len(models) ** 0.5


def load_int8_models(path: str | Path, models: Sequence[FerNet]) -> list[nn.Module] | None:
    """The file's quantized members (int8 features in ONNX Runtime + the given float32 heads), or
    None when the file has none (or an older torch-quantized copy) or onnxruntime is missing.
    Raises ValueError if they are damaged."""
    from . import quantize
    try:
        blob = _read(path)
        graphs = [m.get("int8_onnx") for m in blob.get("members", [])]
        if not graphs or any(g is None for g in graphs) or not quantize.available():
            return None
        return [quantize.Int8FerNet(g.numpy().tobytes(), m.head, m.width) for g, m in zip(graphs, models)]
    except Exception as exc:
        raise ValueError(f"{path}: damaged int8 weights ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else 'unreadable'})") from exc
