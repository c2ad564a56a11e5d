"""One-stage face + expression detector (after FER-YOLO-Mamba): one pass finds faces and
classifies their expression.

A small YOLOX-style network on a grey 256x192 picture (a 640x480 frame shrunk 2.5x): CSP
backbone to strides 8/16/32, a PAFPN neck whose four blocks are VSS blocks (SS2D beside a
conv + channel-attention branch, core.fer.ss2d) or, for the ablation, plain CSP blocks, and an
anchor-free decoupled head per level: objectness, box (centre offset + log size) and the 7
FER2013 classes. Grey input because FER2013 is grey: a colour cue would tell the training
faces from real ones.

Training targets (`assign`): each face goes to the level that suits its size and marks the
cells near its centre as positives. Detections: objectness, class-agnostic NMS, the class
probabilities kept with each box (score for class c = objectness * p_c).
"""
from __future__ import annotations

import io
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.paths import MODELS_DIR

from .model import FER_CLASSES
from .ss2d import ConvBN, CSPBlock, VSSBlock

INPUT_W, INPUT_H = 256, 192
STRIDES = (8, 16, 32)
# faces (longest box side in input pixels) each level is responsible for
LEVEL_RANGES = ((0, 40), (40, 88), (88, 10_000))
DEFAULT_VSS = MODELS_DIR / "fer_det_vss.pt"
DEFAULT_CSP = MODELS_DIR / "fer_det_csp.pt"
FORMAT = "likeness-fer-detector-1"


class DetectorError(ValueError):
    """A missing or damaged detector file; the message is for the user."""


class FaceDetNet(nn.Module):
    def __init__(self, neck: str = "vss", width: tuple[int, ...] = (16, 32, 48, 96, 128), head: int = 48):
        super().__init__()
        if neck not in ("vss", "csp"):
            raise ValueError(f"neck must be 'vss' or 'csp', not {neck!r}")
        self.neck_kind, self.width, self.head_width = neck, tuple(width), head
        c0, c1, c3, c4, c5 = width
        self.stem = nn.Sequential(ConvBN(1, c0, 3, 2), ConvBN(c0, c1, 3, 2))
        self.dark3 = nn.Sequential(ConvBN(c1, c3, 3, 2), CSPBlock(c3, c3))
        self.dark4 = nn.Sequential(ConvBN(c3, c4, 3, 2), CSPBlock(c4, c4))
        self.dark5 = nn.Sequential(ConvBN(c4, c5, 3, 2), CSPBlock(c5, c5))
        block = VSSBlock if neck == "vss" else CSPBlock
        self.lat5 = ConvBN(c5, c4, 1)
        self.td4 = block(2 * c4, c4)
        self.lat4 = ConvBN(c4, c3, 1)
        self.td3 = block(2 * c3, c3)
        self.down3 = ConvBN(c3, c3, 3, 2)
        self.bu4 = block(2 * c3, c4)
        self.down4 = ConvBN(c4, c4, 3, 2)
        self.bu5 = block(2 * c4, c5)
        self.heads = nn.ModuleList(Head(c, head) for c in (c3, c4, c5))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x (b, 1, H, W) in 0..1 -> per level (b, 5 + 7, h, w): box (4), objectness, classes."""
        x = x - 0.5
        p3 = self.dark3(self.stem(x))
        p4 = self.dark4(p3)
        p5 = self.dark5(p4)
        l5 = self.lat5(p5)
        t4 = self.td4(torch.cat([F.interpolate(l5, size=p4.shape[2:]), p4], 1))
        l4 = self.lat4(t4)
        o3 = self.td3(torch.cat([F.interpolate(l4, size=p3.shape[2:]), p3], 1))
        o4 = self.bu4(torch.cat([self.down3(o3), l4], 1))
        o5 = self.bu5(torch.cat([self.down4(o4), l5], 1))
        return [h(o) for h, o in zip(self.heads, (o3, o4, o5))]


class Head(nn.Module):
    def __init__(self, cin: int, c: int):
        super().__init__()
        self.stem = ConvBN(cin, c, 1)
        self.cls = nn.Sequential(ConvBN(c, c, 3, groups=c), ConvBN(c, c, 1), nn.Conv2d(c, len(FER_CLASSES), 1))
        self.reg = nn.Sequential(ConvBN(c, c, 3, groups=c), ConvBN(c, c, 1))
        self.box, self.obj = nn.Conv2d(c, 4, 1), nn.Conv2d(c, 1, 1)
        nn.init.constant_(self.obj.bias, -4.6)  # prior objectness 1%: most cells hold no face

    def forward(self, x):
        x = self.stem(x)
        r = self.reg(x)
        return torch.cat([self.box(r), self.obj(r), self.cls(x)], 1)


def flatten_outputs(outs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (b, cells, 12) raw predictions and (cells, 3) grid x, y, stride."""
    preds, grids = [], []
    for o, s in zip(outs, STRIDES):
        b, c, h, w = o.shape
        preds.append(o.flatten(2).transpose(1, 2))
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        grids.append(torch.stack([xx.flatten(), yy.flatten(), torch.full((h * w,), s)], 1).float())
    return torch.cat(preds, 1), torch.cat(grids, 0)


def decode_boxes(pred: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Raw (..., cells, >=4) -> x1, y1, x2, y2 in input pixels."""
    s = grid[:, 2:3]
    c = (grid[:, :2] + 0.5 + pred[..., :2].clamp(-4, 4)) * s
    wh = pred[..., 2:4].clamp(-6, 6).exp() * s
    return torch.cat([c - wh / 2, c + wh / 2], -1)


def assign(boxes: list[np.ndarray], grid: torch.Tensor, radius: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets for a batch. boxes[i]: (k, 5) class, x1, y1, x2, y2 in input pixels.
    -> index of the assigned face per cell (b, cells) (-1 none) and the stacked faces (m, 5).
    A face takes the cells of its level within `radius` cells of its centre and inside its box,
    always at least its centre cell; where two faces claim a cell the smaller one wins."""
    b = len(boxes)
    owner = torch.full((b, len(grid)), -1, dtype=torch.long)
    area = torch.full((b, len(grid)), math.inf)
    gx = (grid[:, 0] + 0.5) * grid[:, 2]
    gy = (grid[:, 1] + 0.5) * grid[:, 2]
    flat, k = [], 0
    for i, bx in enumerate(boxes):
        for cls, x1, y1, x2, y2 in np.asarray(bx, np.float32).reshape(-1, 5):
            side = max(x2 - x1, y2 - y1)
            level = next(j for j, (lo, hi) in enumerate(LEVEL_RANGES) if lo <= side < hi)
            s = STRIDES[level]
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            on = grid[:, 2] == s
            near = (gx - cx).abs().le(radius * s) & (gy - cy).abs().le(radius * s)
            inside = (gx > x1) & (gx < x2) & (gy > y1) & (gy < y2)
            centre = ((gx - cx).abs() <= s / 2) & ((gy - cy).abs() <= s / 2)
            cells = on & ((near & inside) | centre)
            a = float((x2 - x1) * (y2 - y1))
            take = cells & (area[i] > a)
            owner[i, take] = k
            area[i, take] = a
            flat.append([cls, x1, y1, x2, y2])
            k += 1
    return owner, torch.tensor(flat, dtype=torch.float32).reshape(-1, 5)


def giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    lt, rb = torch.max(a[:, :2], b[:, :2]), torch.min(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    area_a, area_b = (a[:, 2:] - a[:, :2]).prod(1), (b[:, 2:] - b[:, :2]).prod(1)
    union = area_a + area_b - inter
    iou = inter / union.clamp(min=1e-6)
    hull = (torch.max(a[:, 2:], b[:, 2:]) - torch.min(a[:, :2], b[:, :2])).prod(1)
    return iou - (hull - union) / hull.clamp(min=1e-6), iou


def detection_loss(outs: list[torch.Tensor], boxes: list[np.ndarray], soft: list[np.ndarray] | None = None,
                   cls_weight: float = 1.0) -> tuple[torch.Tensor, dict]:
    """5 GIoU + objectness BCE + cls_weight x class cross-entropy, over the positive cells.
    `soft[i]` (k_i, 7), aligned with boxes[i], replaces the one-hot class targets by target
    distributions (e.g. a teacher's probabilities mixed with the label); a row of a face
    without an expression (class -1) is ignored."""
    pred, grid = flatten_outputs(outs)
    owner, faces = assign(boxes, grid)
    pos = owner >= 0
    n = max(1, int(pos.sum()))
    obj_t = torch.zeros(pred.shape[:2])
    loss_box = loss_cls = pred.sum() * 0
    if pos.any():
        tgt = faces[owner[pos]]
        pb = decode_boxes(pred[pos], grid.expand(pred.shape[0], -1, -1)[pos])
        g, iou = giou(pb, tgt[:, 1:])
        loss_box = (1 - g).sum() / n
        known = tgt[:, 0] >= 0     # faces of real photos have no expression label (class -1)
        if known.any():
            logits = pred[pos][known][:, 5:]
            if soft is not None:
                dist = torch.from_numpy(np.concatenate([np.asarray(t, np.float32).reshape(-1, len(FER_CLASSES))
                                                        for t in soft]))[owner[pos]][known]
                loss_cls = -(dist * F.log_softmax(logits, 1)).sum() / n
            else:
                loss_cls = F.cross_entropy(logits, tgt[known, 0].long(), reduction="sum") / n
        obj_t[pos] = 1.0
    loss_obj = F.binary_cross_entropy_with_logits(pred[..., 4], obj_t, reduction="sum") / n
    total = 5.0 * loss_box + loss_obj + cls_weight * loss_cls
    return total, {"box": loss_box.item(), "obj": loss_obj.item(), "cls": loss_cls.item(), "pos": n}


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = 0.45) -> list[int]:
    order = np.argsort(-scores)
    keep = []
    while len(order):
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
        order = rest[inter / np.maximum(area(boxes[i]) + area(boxes[rest]) - inter, 1e-6) <= iou]
    return keep


@dataclass
class Detection:
    box: tuple[float, float, float, float]   # x, y, w, h in the frame's pixels
    score: float                             # objectness
    probs: np.ndarray                        # (7,) expression probabilities

    @property
    def label(self) -> str:
        return FER_CLASSES[int(self.probs.argmax())]


def save_detector(net: FaceDetNet, path: str | Path, meta: dict) -> None:
    """float16 weights + architecture + meta, written atomically."""
    from core.paint.files import write_atomic
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "neck": net.neck_kind, "width": list(net.width), "head": net.head_width,
                "state": state, "meta": meta}, buf)
    write_atomic(Path(path), buf.getvalue())


def load_detector(path: str | Path) -> tuple[FaceDetNet, dict]:
    path = Path(path)
    if not path.is_file():
        raise DetectorError(f"detector model not found: {path} (train it with scripts/train_detector.py)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile, UnicodeDecodeError, KeyError) as exc:
        raise DetectorError(f"{path} is not a readable detector file: {' '.join(str(exc).split())[:200]}") from exc
    except Exception as exc:  # the unpickler raises assorted types on damaged data
        raise DetectorError(f"{path} is damaged: {type(exc).__name__}") from exc
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise DetectorError(f"{path} is not a Likeness face detector (format {FORMAT!r} expected)")
    try:
        net = FaceDetNet(str(blob["neck"]), tuple(int(v) for v in blob["width"]), int(blob["head"]))
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state"].items()})
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise DetectorError(f"{path}: weights do not fit the detector: {' '.join(str(exc).split())[:200]}") from exc
    if any(not torch.isfinite(v).all() for v in net.state_dict().values() if v.is_floating_point()):
        raise DetectorError(f"{path}: weights hold NaN or infinite values")
    return net.eval(), dict(blob.get("meta") or {})


@torch.no_grad()
def fuse_batchnorm(net: nn.Module) -> None:
    """Fold every ConvBN's BatchNorm into its convolution (inference only: ~10% of the time)."""
    for m in net.modules():
        if isinstance(m, ConvBN) and isinstance(m[1], nn.BatchNorm2d):
            conv, bn = m[0], m[1]
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                              groups=conv.groups, bias=True)
            fused.weight.copy_(conv.weight * scale[:, None, None, None])
            fused.bias.copy_(bn.bias - bn.running_mean * scale)
            m[0], m[1] = fused, nn.Identity()


def preprocess(image: np.ndarray) -> tuple[torch.Tensor, float, float, float]:
    """BGR or grey frame -> (1, 1, INPUT_H, INPUT_W) tensor, the scale back to the frame and the
    x, y offset of the picture inside the input (frames not 4:3 are letterboxed with mid grey)."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    h, w = gray.shape
    s = min(INPUT_W / w, INPUT_H / h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    small = cv2.resize(gray, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    ox, oy = (INPUT_W - nw) // 2, (INPUT_H - nh) // 2
    if (nw, nh) != (INPUT_W, INPUT_H):
        canvas = np.full((INPUT_H, INPUT_W), 128, np.uint8)
        canvas[oy:oy + nh, ox:ox + nw] = small
        small = canvas
    return torch.from_numpy(small).float().div_(255)[None, None], 1 / s, ox, oy


class OneStageDetector:
    """`detect(frame)` -> list[Detection] in frame pixels, best first."""

    def __init__(self, path: str | Path | None = None, score_threshold: float = 0.3, threads: int | None = 1,
                 max_faces: int = 20):
        if threads:
            torch.set_num_threads(threads)
        self.path = Path(path) if path else DEFAULT_VSS
        self.net, self.meta = load_detector(self.path)
        self.parameters = sum(p.numel() for p in self.net.parameters())   # as trained, before folding
        fuse_batchnorm(self.net)
        self.score_threshold, self.max_faces = score_threshold, max_faces

    @torch.inference_mode()
    def detect(self, image: np.ndarray, score_threshold: float | None = None) -> list[Detection]:
        x, scale, ox, oy = preprocess(image)
        pred, grid = flatten_outputs(self.net(x))
        pred = pred[0]
        obj = torch.sigmoid(pred[:, 4])
        thr = self.score_threshold if score_threshold is None else score_threshold
        idx = torch.nonzero(obj >= thr).flatten()
        if len(idx) == 0:
            return []
        boxes = decode_boxes(pred[idx], grid[idx]).numpy()
        scores = obj[idx].numpy()
        probs = torch.softmax(pred[idx, 5:], 1).numpy()
        out = []
        for i in nms(boxes, scores)[:self.max_faces]:
            x1, y1, x2, y2 = boxes[i]
            x1, x2 = np.clip([(x1 - ox) * scale, (x2 - ox) * scale], 0, image.shape[1])
            y1, y2 = np.clip([(y1 - oy) * scale, (y2 - oy) * scale], 0, image.shape[0])
            if x2 - x1 >= 2 and y2 - y1 >= 2:
                out.append(Detection((float(x1), float(y1), float(x2 - x1), float(y2 - y1)), float(scores[i]),
                                     probs[i]))
        return out
