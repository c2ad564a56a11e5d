"""`python main.py eval-detect --set DIR`: VOC mAP@0.5 and per-class AP of the one-stage detector
(VSS neck), its CSP-neck ablation and the two-stage pipeline (MediaPipe + the shipped
classifier) on a held-out detection set, with parameters and CPU latency for each."""
from __future__ import annotations

import json
import sys

from core.commands import UserError

NAME = "eval-detect"
HELP = "Score the one-stage detectors and the two-stage pipeline on a detection set (mAP@0.5)."


def add_arguments(p) -> None:
    p.add_argument("--set", required=True, dest="set_dir", help="detection set folder (images/ + labels.csv)")
    p.add_argument("--vss", default=None, help="one-stage detector, VSS neck (default resources/models/fer_det_vss.pt)")
    p.add_argument("--csp", default=None, help="CSP-neck ablation (default resources/models/fer_det_csp.pt)")
    p.add_argument("--no-two-stage", action="store_true", help="skip the MediaPipe + classifier pipeline")
    p.add_argument("--limit", type=int, default=0, help="score only the first N images (0: all)")
    p.add_argument("--latency-frames", type=int, default=60, help="frames timed for the 640x480 latency")


def _latency_frame(items):
    """A 640x480 frame with one face for the latency figure: the first set image with one face."""
    import cv2
    for path, gt in items:
        if len(gt) == 1:
            return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(cv2.imread(str(items[0][0]), cv2.IMREAD_GRAYSCALE), cv2.COLOR_GRAY2BGR)


def run(args) -> int:
    import os

    from core.fer.detdata import read_detection_set
    from core.fer.detect_eval import evaluate_set, frame_latency, one_stage_runner, two_stage_runner
    from core.fer.detector import DEFAULT_CSP, DEFAULT_VSS, OneStageDetector

    items = read_detection_set(args.set_dir)   # DetSetError is a ValueError: one-line message
    if args.limit:
        items = items[:args.limit]
    systems = {}
    for name, path in (("one_stage_vss", args.vss or DEFAULT_VSS), ("one_stage_csp", args.csp or DEFAULT_CSP)):
        det = OneStageDetector(path)            # DetectorError (ValueError) for missing/damaged files
        systems[name] = (one_stage_runner(det), det.parameters, str(det.path))
    pipe = None
    if not args.no_two_stage:
        from core.fer import FerPipeline
        from core.tracking import TrackerError
        try:
            pipe = FerPipeline(num_faces=6, image_mode=True)
        except (TrackerError, FileNotFoundError, ValueError) as exc:
            raise UserError(str(exc)) from exc
        params = sum(p.numel() for m in pipe.classifier.models for p in m.parameters())
        systems["two_stage"] = (two_stage_runner(pipe), params, "MediaPipe face landmarker + " +
                                os.path.basename(str(pipe.classifier.path)))
    frame = _latency_frame(items)
    report = {"set": str(args.set_dir), "images": len(items), "faces": int(sum(len(g) for _, g in items)),
              "systems": {}}
    try:
        for name, (runner, params, what) in systems.items():
            res = evaluate_set(runner, items)
            res["parameters"] = int(params)
            res["model"] = what
            res["latency_640x480"] = frame_latency(runner, frame, args.latency_frames)
            report["systems"][name] = res
            ap = ", ".join(f"{k} {v:.3f}" for k, v in res["AP50"].items())
            print(f"{name}: mAP@0.5 {res['mAP50']:.4f} | face AP {res['face_AP50']:.4f} | recall {res['recall50']:.3f}"
                  f" | expression acc on found faces {res['expression_accuracy_found']:.3f}", file=sys.stdout)
            print(f"  per class AP: {ap}")
            print(f"  {params:,} parameters (classifier only for two-stage: MediaPipe's are not counted) | "
                  f"640x480 end to end {res['latency_640x480']['ms_median']} ms median "
                  f"({res['latency_640x480']['fps_median']} fps), 1 thread")
    finally:
        if pipe is not None:
            pipe.close()
    s = report["systems"]
    if "one_stage_vss" in s and "one_stage_csp" in s:
        report["vss_minus_csp_mAP50"] = round(s["one_stage_vss"]["mAP50"] - s["one_stage_csp"]["mAP50"], 4)
    try:
        report["load_avg_1min"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    print(json.dumps(report))
    return 0
