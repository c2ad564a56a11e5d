"""`python main.py eval-fit --faces DIR`: landmark error of single-image fits on annotated photos."""
from __future__ import annotations

import json

from core.commands import UserError
from core.paths import MissingDataError, shared_path

NAME = "eval-fit"
HELP = "Fit every NAME.jpg + NAME.pts (68 points) in a folder: normalised mean error, failures, time."


def add_arguments(p) -> None:
    p.add_argument("--faces", default=None, help="folder of NAME.jpg + NAME.pts (default ../shared/faces68)")
    p.add_argument("--limit", type=int, default=None, help="only the first N photos")
    p.add_argument("--per-photo", action="store_true", help="print each photo's error")
    p.add_argument("--detector", choices=("blazeface", "landmarker"), default="blazeface",
                   help="blazeface: full-range detector + landmarker on crops (default); "
                        "landmarker: the landmarker alone on the whole photo (the earlier method)")


def run(args) -> int:
    from core.fitting.evaluate import FAILURE_NME, fit_annotated, nme, summarize
    from core.fitting.pipeline import shared_fitter
    try:
        folder = shared_path("faces68", args.faces, "annotated photos (NAME.jpg + NAME.pts)")
    except MissingDataError as exc:
        raise UserError(str(exc)) from exc
    if args.detector == "blazeface":
        from core.fitting.detect import DetectorError, shared_detector
        try:
            shared_detector()
        except DetectorError as exc:
            raise UserError(str(exc)) from exc
    try:
        fits = fit_annotated(shared_fitter(), folder, limit=args.limit, method=args.detector)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    for pf in fits:
        if pf.fit is None:
            print(f"{pf.name}: not fitted: {pf.error}")
        elif args.per_photo:
            print(f"{pf.name}: {nme(pf.fit.landmarks68, pf.gt):.2%} in {pf.seconds:.2f} s")
    s = summarize(fits)
    print(f"{s['photos']} photos from {folder} ({args.detector}): annotated face found and fitted in "
          f"{s['fitted']} ({s['found_rate']:.1%})")
    print(f"normalised mean error (outer-eye-corner distance): mean {s['nme_mean']:.2%}, median {s['nme_median']:.2%}")
    print(f"failures (error > {FAILURE_NME:.0%} or not fitted): {s['failure_rate']:.1%}")
    print(f"time per photo (read, detect, fit): {s['seconds_per_photo']:.2f} s")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in s.items()}))
    return 0
