"""`python main.py eval-texture --faces DIR`: how well the texture code predicts unseen skin."""
from __future__ import annotations

import json
from pathlib import Path

from core.commands import UserError
from core.paths import REPO_ROOT, MissingDataError, shared_path

NAME = "eval-texture"
HELP = ("Fit every NAME.jpg + NAME.pts in a folder, hold out one half of each visible face, predict "
        "it from the other half through the texture code; PSNR and CIEDE2000 beside the mirror "
        "fill and the mean texture.")
CACHE = REPO_ROOT / ".cache" / "appearance" / "samples"


def add_arguments(p) -> None:
    p.add_argument("--faces", default=None, help="folder of NAME.jpg + NAME.pts (default ../shared/faces68)")
    p.add_argument("--model", default=None, help="appearance model (default resources/models/appearance.npz)")
    p.add_argument("--cache", default=str(CACHE),
                   help="folder of fitted UV observations, reused and extended (default .cache/appearance/samples)")
    p.add_argument("--folds", type=int, default=5,
                   help="cross-validation folds for photos the model was trained on (default 5)")
    p.add_argument("--limit", type=int, default=None, help="only the first N photos")
    p.add_argument("--per-photo", action="store_true", help="print each photo's figures")


def run(args) -> int:
    import numpy as np

    from core.appearance.evaluate import cross_validate, summarize
    from core.appearance.model import AppearanceModel, AppearanceModelError
    from core.appearance.samples import collect, load_samples, photo_sha1
    from core.appearance.train import fit_pca
    from core.fitting.evaluate import annotated_photos

    try:
        folder = shared_path("faces68", args.faces, "annotated photos (NAME.jpg + NAME.pts)")
        photos = annotated_photos(folder)[:args.limit]
        model = AppearanceModel.load(args.model)
    except (MissingDataError, FileNotFoundError, AppearanceModelError) as exc:
        raise UserError(str(exc)) from exc
    cache = Path(args.cache)
    # observations are keyed by name; a different photo under a known name is fitted again
    for name, img, _ in photos:
        f = cache / f"{name}.npz"
        if f.exists():
            with np.load(f, allow_pickle=False) as z:
                stale = str(z["photo_sha1"]) != photo_sha1(img)
            if stale:
                f.unlink()
    report = collect(photos, cache, log=lambda s: None)
    if report["collected"]:
        print(f"fitted {report['collected']} photos ({report['seconds']:.0f} s)")
    test = load_samples(cache, [n for n, _, _ in photos])
    failed = len(photos) - len(test)
    if not test:
        raise UserError(f"none of the {len(photos)} photos in {folder} could be fitted "
                        f"(damaged images, or no face found)")
    trained_on = set(model.meta.get("photos_sha1", []))
    pool: list = []
    if any(s.photo_sha1 in trained_on for s in test):
        pool = [s for s in load_samples(cache) if s.photo_sha1 in trained_on]
        if len(pool) < 0.9 * len(trained_on):
            raise UserError(
                f"the appearance model was trained on some of these photos, and cross-validation "
                f"needs the observations of its {len(trained_on)} training photos in {cache} (found "
                f"{len(pool)}); run `python scripts/train_appearance.py collect` first, or pass "
                f"--model with a model trained without these photos")
        print(f"{sum(s.photo_sha1 in trained_on for s in test)} photos are in the model's training set: "
              f"{args.folds}-fold cross-validation, each fold predicted by a model trained without it")
    covered = model.covered
    k = model.num_components
    scores = cross_validate(test, pool, trained_on, args.folds, k,
                            fit=lambda ss: fit_pca(ss, covered, k, log=lambda s: None)[0],
                            shipped=model)
    if args.per_photo:
        for s in scores:
            print(f"{s.name}: code {s.psnr['code']:.2f} dB / {s.ciede2000['code']:.2f}, "
                  f"mirror {s.psnr['mirror']:.2f} dB / {s.ciede2000['mirror']:.2f}, "
                  f"mean {s.psnr['mean']:.2f} dB / {s.ciede2000['mean']:.2f}")
    out = summarize(scores)
    out["not_fitted"] = failed
    print(f"{out['photos']} photos scored ({failed} not fitted, "
          f"{len(test) - out['photos']} showing too little of one half)")
    print("held-out half     PSNR (dB, higher is better)   CIEDE2000 (lower is better)")
    for m in ("code", "mirror", "mean"):
        print(f"  {m:<14} {out[f'psnr_{m}']:>10.2f} {out[f'ciede2000_{m}']:>28.2f}")
    if scores:
        print(f"texture code vs mirror fill: {out['psnr_gain_over_mirror_db']:+.2f} dB")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}))
    return 0
