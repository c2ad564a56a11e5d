"""Stable face ids across frames: greedy IoU matching with a centroid-distance fallback.

Faces move little between frames, so the best-overlapping box from the previous frames keeps
its id; a face that a frame missed keeps its id for `max_missing` frames so a blink of the
detector does not renumber everyone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Box = tuple[float, float, float, float]  # x, y, w, h in pixels


def iou(a: Box, b: Box) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass
class _Track:
    face_id: int
    box: Box
    missing: int = 0


class FaceIdAssigner:
    def __init__(self, min_iou: float = 0.2, max_centroid: float = 0.6, max_missing: int = 15):
        self.min_iou, self.max_centroid, self.max_missing = min_iou, max_centroid, max_missing
        self._tracks: list[_Track] = []
        self._next_id = 0

    def reset(self) -> None:
        self._tracks.clear()
        self._next_id = 0

    def assign(self, boxes: list[Box]) -> list[int]:
        """Ids for `boxes` (same order), reusing the ids of the tracks they continue."""
        pairs = []
        for ti, t in enumerate(self._tracks):
            tc = np.array([t.box[0] + t.box[2] / 2, t.box[1] + t.box[3] / 2])
            for bi, b in enumerate(boxes):
                o = iou(t.box, b)
                bc = np.array([b[0] + b[2] / 2, b[1] + b[3] / 2])
                dist = float(np.linalg.norm(tc - bc)) / max(1.0, (t.box[2] + b[2]) / 2)
                if o >= self.min_iou or dist <= self.max_centroid:
                    pairs.append((o - dist, ti, bi))  # prefer overlap, then closeness
        ids: list[int | None] = [None] * len(boxes)
        used_t: set[int] = set()
        for _, ti, bi in sorted(pairs, reverse=True):
            if ti in used_t or ids[bi] is not None:
                continue
            used_t.add(ti)
            ids[bi] = self._tracks[ti].face_id
            self._tracks[ti].box, self._tracks[ti].missing = boxes[bi], 0
        for ti, t in enumerate(self._tracks):
            if ti not in used_t:
                t.missing += 1
        self._tracks = [t for t in self._tracks if t.missing <= self.max_missing]
        for bi, b in enumerate(boxes):
            if ids[bi] is None:
                ids[bi] = self._next_id
                self._tracks.append(_Track(self._next_id, b))
                self._next_id += 1
        return [int(i) for i in ids]
