"""Run the shipped expression classifier on 48x48 crops: probabilities, unknown score, Grad-CAM."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.paths import MODELS_DIR

from .model import FER_CLASSES, ensemble_forward, load_int8_models, load_models, normalize
from .openset import to_unit, unknown_scores

DEFAULT_MODEL = MODELS_DIR / "fer_vgg.pt"


@dataclass
class Prediction:
    probs: np.ndarray    # (N, 7) softmax, FER2013 class order
    logits: np.ndarray   # (N, 7)
    unknown: np.ndarray  # (N,) 0..1 open-set score (see core.fer.openset), higher = less like any class

    @property
    def labels(self) -> list[str]:
        return [FER_CLASSES[i] for i in self.probs.argmax(1)]

    @property
    def confidence(self) -> np.ndarray:
        return self.probs.max(1)


class ExpressionClassifier:
    """`predict(crops)` on uint8 (N, 48, 48) grayscale crops; `gradcam(crop, cls)` -> (48, 48) map.

    The model file holds one network or an ensemble whose logits are averaged. `flip` turns on
    test-time mirror averaging; None takes the configuration the file's accuracy was measured
    in (its meta "flip", default on). `int8` runs the file's quantized feature extractors when
    it has them (default; ONNX Runtime, ~1.7x the float32 crops/s at the same accuracy, see
    core.fer.quantize); Grad-CAM always uses the float32 network. `threads` sets torch's
    process-wide thread count (None leaves it alone); the int8 session uses the same count.
    """

    def __init__(self, path: str | Path | None = None, flip: bool | None = None, threads: int | None = 1,
                 int8: bool = True):
        path = Path(path) if path else DEFAULT_MODEL
        if not path.is_file():
            raise FileNotFoundError(f"expression model not found: {path} (train and export it with "
                                    f"scripts/train_fer.py, or pass --model)")
        if threads:
            # One thread: on a busy 2-core machine torch's second thread spin-waits and makes a
            # batch of 8 crops 10x slower (measured 65 ms -> 760 ms); one thread also leaves
            # a core to MediaPipe in the live loop.
            torch.set_num_threads(threads)
        self.path = path
        models, self.meta = load_models(path)
        for m in models:
            _fuse_bn(m)
        # NHWC convolutions are ~1.7-1.9x faster on this CPU (measured: 124 -> 232 crops/s
        # flip-averaged, 315 -> 459 without flip, one thread)
        self.models = [m.to(memory_format=torch.channels_last) for m in models]
        # what predict() runs: the int8 members when the file has them, else the float32 ones
        fast = load_int8_models(path, models) if int8 else None
        self.int8 = fast is not None
        self._predict_models = fast or self.models
        self.classes = tuple(self.meta.get("classes", FER_CLASSES))
        self.flip = bool(self.meta.get("flip", True)) if flip is None else flip
        osm = self.meta.get("openset") or {}
        self.unknown_method = osm.get("score", "msp")
        self._means = torch.as_tensor(osm["means"]).float() if "means" in osm else None
        self._quantiles = np.asarray(osm["quantiles"]) if "quantiles" in osm else None

    @torch.inference_mode()
    def predict(self, crops: np.ndarray) -> Prediction:
        crops = np.asarray(crops)
        if crops.ndim == 2:
            crops = crops[None]
        if len(crops) == 0:
            z = np.zeros((0, len(self.classes)), np.float32)
            return Prediction(z, z, np.zeros(0, np.float32))
        x = normalize(torch.from_numpy(np.ascontiguousarray(crops)))
        logits, feats = ensemble_forward(self._predict_models, x, self.flip)
        raw = unknown_scores(logits, feats, self._means)[self.unknown_method]
        unknown = to_unit(raw, self._quantiles) if self._quantiles is not None else raw.astype(np.float32)
        return Prediction(torch.softmax(logits, 1).numpy(), logits.numpy(), unknown)

    def gradcam(self, crop: np.ndarray, cls: int | None = None) -> np.ndarray:
        """Grad-CAM (Selvaraju et al. 2017) on each member's last conv block for the ensemble's
        predicted class (or `cls`), averaged over members, upsampled to the crop, 0..1."""
        x = normalize(torch.from_numpy(np.ascontiguousarray(crop[None])))
        if cls is None:
            with torch.inference_mode():
                cls = int(ensemble_forward(self.models, x, self.flip)[0].argmax(1))
        cam = sum(_member_cam(m, x, int(cls)) for m in self.models) / len(self.models)
        cam = torch.nn.functional.interpolate(cam[None, None], size=crop.shape[-2:], mode="bilinear",
                                              align_corners=False)[0, 0].numpy()
        return cam / cam.max() if cam.max() > 0 else cam


def _member_cam(model: torch.nn.Module, x: torch.Tensor, k: int) -> torch.Tensor:
    """One network's Grad-CAM for class k at its last conv block's resolution (6x6)."""
    store: dict[str, torch.Tensor] = {}
    h = model.features[-1].register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    try:
        with torch.enable_grad():
            logits = model(x)
            act = store["a"]
            grad, = torch.autograd.grad(logits[0, k], act)
    finally:
        h.remove()
    weights = grad.mean((2, 3), keepdim=True)
    return torch.relu((weights * act).sum(1))[0].detach()


def _fuse_bn(model: torch.nn.Module) -> torch.nn.Module:
    """Fold each eval-mode BatchNorm into its conv: same outputs, ~20% less CPU per crop."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    for block in model.features.modules():  # (Conv2d, BatchNorm2d, ...) pairs, inside residual blocks too
        if (isinstance(block, torch.nn.Sequential) and len(block) > 1 and isinstance(block[0], torch.nn.Conv2d)
                and isinstance(block[1], torch.nn.BatchNorm2d)):
            block[0] = fuse_conv_bn_eval(block[0], block[1])
            block[1] = torch.nn.Identity()
    return model
