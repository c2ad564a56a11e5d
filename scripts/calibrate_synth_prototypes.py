"""Choose the action-unit intensities of core.synth.faces.PROTOTYPES (after SynFER's calibration).

Each class may only use the blendshapes of its FACS/EMFACS action units (ALLOWED); this
script picks their intensities (0, 0.25, ..., 1) by coordinate ascent on how the shipped
classifier reads the class's renders, averaged over --people calibration people (seeds
1000+, none of them used by tests/test_synth.py) and random shots (pose, light, background,
blur, as synth-fer makes them). It prints the prototypes as JSON; paste them into
core/synth/faces.py.

    nice -n 10 python scripts/calibrate_synth_prototypes.py [--classes angry,sad] [--passes 2]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# FACS action units of each prototype (Ekman & Friesen's EMFACS predictions, with the common
# variants) as ARKit blendshapes: AU1 browInnerUp, AU2 browOuterUp, AU4 browDown, AU5 eyeWide,
# AU6 cheekSquint, AU7 eyeSquint, AU9 noseSneer, AU10 mouthUpperUp, AU12 mouthSmile, AU15
# mouthFrown, AU16 mouthLowerDown, AU17 mouthShrugLower, AU20 mouthStretch, AU23/24 mouthPress
# and mouthRollLower, AU25-27 jawOpen, AU43 eyeBlink (drooping lids), AU64 eyeLookDown.
# Disgust has no AU4 (EMFACS: 9 or 10 with 15, 16, 17, 25, 26): with the brows lowered its
# renders read as anger. Neutral may only relax: lips closed a little, lids up to half lowered
# (a rendered face at rest stares: its bare eyeballs show more white than a photo's).
ALLOWED = {
    "angry": ["browDown", "eyeSquint", "eyeWide", "noseSneer", "mouthPress", "mouthRollLower", "mouthUpperUp",
              "mouthLowerDown", "jawOpen", "mouthFrown", "mouthShrugLower"],
    "disgust": ["noseSneer", "mouthUpperUp", "cheekSquint", "eyeSquint", "eyeBlink", "mouthFrown",
                "mouthLowerDown", "mouthShrugLower", "jawOpen"],
    "fear": ["browInnerUp", "browOuterUp", "browDown", "eyeWide", "eyeSquint", "mouthStretch", "jawOpen",
             "mouthLowerDown"],
    "happy": ["mouthSmile", "cheekSquint", "eyeSquint", "mouthUpperUp", "jawOpen", "mouthLowerDown"],
    "sad": ["browInnerUp", "browDown", "eyeBlink", "eyeLookDown", "cheekSquint", "mouthFrown", "mouthShrugLower",
            "mouthPress"],
    "surprise": ["browInnerUp", "browOuterUp", "eyeWide", "jawOpen", "mouthLowerDown"],
    "neutral": ["mouthClose", "mouthPress", "eyeBlink", "eyeSquint"],
}
LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)
NEUTRAL_LEVELS = (0.0, 0.05, 0.1, 0.15, 0.25, 0.35, 0.5)   # finer: a face at rest moves little
NEUTRAL_MAX = {"eyeBlink": 0.5, "eyeSquint": 0.5}   # relaxed lids; anything else at most 0.25


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classes", default=",".join(ALLOWED))
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--people", type=int, default=16, help="calibration people (identity seeds 1000+)")
    ap.add_argument("--shots", type=int, default=4, help="random shots of each class per person")
    args = ap.parse_args()

    from core.appearance import shared_model
    from core.facemodel import FaceModel
    from core.fer.classifier import ExpressionClassifier
    from core.fer.model import FER_CLASSES
    from core.render import Renderer, headless_context
    from core.synth import faces
    from core.synth.faces import random_identity
    from core.synth.render import PersonRenderer

    model, app = FaceModel.load(), shared_model()
    r = Renderer(headless_context())
    clf = ExpressionClassifier()
    people = [PersonRenderer(model, app, random_identity(model, app, np.random.default_rng(1000 + i)), r)
              for i in range(args.people)]

    def score(label: str, proto: dict[str, float]) -> tuple[float, float]:
        faces.PROTOTYPES[label] = proto
        crops = []
        for i, p in enumerate(people):
            p.activate()
            rng = np.random.default_rng(77 + i)      # the same shots for every candidate
            crops += [p.shot(label, rng).crop for _ in range(args.shots)]
        probs = clf.predict(np.stack(crops)).probs
        k = FER_CLASSES.index(label)
        return float((probs.argmax(1) == k).mean()), float(probs[:, k].mean())

    result = {}
    for label in args.classes.split(","):
        proto = {k: v for k, v in faces.PROTOTYPES[label].items() if k in ALLOWED[label]}
        acc, p = score(label, proto)
        best = acc + p
        print(f"{label}: start acc {acc:.2f} p {p:.2f}", flush=True)
        for _ in range(args.passes):
            changed = False
            for name in ALLOWED[label]:
                top = NEUTRAL_MAX.get(name, 0.25) if label == "neutral" else 1.0
                for v in [v for v in (NEUTRAL_LEVELS if label == "neutral" else LEVELS) if v <= top]:
                    if abs(proto.get(name, 0.0) - v) < 1e-6:
                        continue
                    cand = {**proto, name: v}
                    cand = {k: x for k, x in cand.items() if x > 0}
                    acc, p = score(label, cand)
                    if acc + p > best + 1e-3:
                        best, proto, changed = acc + p, cand, True
                        print(f"  {name}={v}: acc {acc:.2f} p {p:.2f}", flush=True)
            if not changed:
                break
        faces.PROTOTYPES[label] = proto
        result[label] = proto
        print(f"{label}: {json.dumps(proto)} (acc + p = {best:.2f})", flush=True)
    r.release()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
