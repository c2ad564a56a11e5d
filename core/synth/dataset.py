"""`synth-fer` datasets: many synthetic people, each shot several times, with the shipped
classifier's pseudo-label check (after SynFER's label calibration: a render whose expression
does not read as intended is dropped, and the report says how many).

Output folder: images/NNNNNN.jpg (full picture), crops/NNNNNN.png (48x48 grey, FER2013 framing),
labels.csv (one row per render: label, kept, the classifier's reading, face box, pose, intensity,
asymmetry, action units, the 53 weights), synth_fer.npz (kept crops + labels in FER2013's npz
layout, ready to train with), report.json.
"""
from __future__ import annotations

import csv
import json
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from core.expressions import EXPRESSION_NAMES
from core.fer.model import FER_CLASSES

from .faces import AU_BLENDSHAPES, Backdrops, random_identity

KEEP_PROB = 0.3          # the intended class must be the classifier's top class or reach this
SHOTS_PER_PERSON = 64    # building a person (mesh, hair, texture) costs ~0.5-1 s; a shot ~30 ms


class SynthError(ValueError):
    """Bad options or an unusable output folder; the message is for the user."""


def keep(probs: np.ndarray, label: int, min_prob: float = KEEP_PROB) -> bool:
    return int(np.argmax(probs)) == label or float(probs[label]) >= min_prob


def generate(n: int, out: Path, seed: int = 0, real_samples: Path | None = None,
             shots_per_person: int = SHOTS_PER_PERSON, classifier=None,
             progress: Callable[[float, str], None] = lambda f, s: None,
             cancelled: Callable[[], bool] = lambda: False) -> dict:
    """Render `n` labelled faces into `out` (created; must be empty or absent). Classes are
    balanced. Returns the report."""
    from core.appearance import AppearanceModelError, shared_model
    from core.facemodel import FaceModel
    from core.fer.classifier import ExpressionClassifier
    from core.paint.files import write_atomic
    from core.render import Renderer, headless_context

    from .render import PersonRenderer, build_person

    if n < 1:
        raise SynthError("--n must be at least 1")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise SynthError(f"{out} is not empty; choose a new folder")
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "crops").mkdir(exist_ok=True)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    model = FaceModel.load()
    try:
        appearance = shared_model()
    except AppearanceModelError:
        appearance = None
    real = _LazySamples(Path(real_samples)) if real_samples is not None and Path(real_samples).is_dir() else []
    # one view, no mirror averaging: half the check's cost (~10 ms a face); the keep rule is loose
    clf = classifier or ExpressionClassifier(flip=False)
    renderer = Renderer(headless_context())
    backdrops = Backdrops(np.random.default_rng(seed + 1))
    # files are encoded and written on a second thread (OpenCV releases the GIL): ~4 ms a face
    writer = ThreadPoolExecutor(max_workers=1)
    writes: deque = deque()
    labels = [FER_CLASSES[i % len(FER_CLASSES)] for i in range(n)]
    rng.shuffle(labels)
    rows, crops, kept_labels, names = [], [], [], []
    person, people, made = None, 0, 0
    pending: list = []
    # the next person is drawn and built on a third thread while this one is shot (reading and
    # encoding a fitted face, mesh extraction, hair, texture: ~1-2 s a person, most of it in
    # torch and NumPy, which release the GIL), from its own generator seeded here, so a seed
    # still gives the same people whatever the threads' timing
    builder = ThreadPoolExecutor(max_workers=1)

    def make_person(person_seed: int):
        who = random_identity(model, appearance, np.random.default_rng(person_seed), real)
        return who, build_person(model, appearance, who)

    def next_person():
        return builder.submit(make_person, int(rng.integers(2**63)))

    upcoming = next_person()

    def flush() -> None:
        if not pending:
            return
        probs = clf.predict(np.stack([f.crop for _, f in pending])).probs
        for (name, f), p in zip(pending, probs):
            li = FER_CLASSES.index(f.label)
            ok = keep(p, li)
            rows.append(_row(name, f, ok, p, li))
            if ok:
                crops.append(f.crop)
                kept_labels.append(li)
                names.append(name)
        pending.clear()

    t_loop = time.perf_counter()       # models loaded: the rest is per person and per face
    try:
        for i, label in enumerate(labels):
            if cancelled():
                break
            if person is None or i % shots_per_person == 0:
                who, parts = upcoming.result()
                person = PersonRenderer(model, appearance, who, renderer, backdrops=backdrops, parts=parts)
                people += 1
                if i + shots_per_person < n:
                    upcoming = next_person()
            face = person.shot(label, rng)
            name = f"{i:06d}"
            writes.append(writer.submit(_write_images, out, name, face.image, face.crop))
            if len(writes) > 32:          # bounded: a slow disk holds back rendering, not memory
                writes.popleft().result()
            pending.append((name, face))
            made += 1
            if len(pending) >= 64:
                flush()
            if made % 20 == 0:
                progress(made / n, f"{made}/{n} faces")
        flush()
        for w in writes:
            w.result()          # raises the first write error (a full disk), if any
    finally:
        builder.shutdown(wait=True, cancel_futures=True)
        writer.shutdown(wait=True)
        renderer.release()
    with open(out / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows(rows)
    arr = np.stack(crops) if crops else np.zeros((0, 48, 48), np.uint8)
    np.savez_compressed(out / "synth_fer.npz", images=arr, labels=np.array(kept_labels, np.int64),
                        names=np.array(names), classes=np.array(FER_CLASSES))
    per_class = {c: {"made": sum(r[1] == c for r in rows), "kept": sum(r[1] == c and r[2] == 1 for r in rows)}
                 for c in FER_CLASSES}
    seconds, loop_seconds = time.perf_counter() - t0, time.perf_counter() - t_loop   # with labels written
    report = {"faces": made, "kept": len(crops), "dropped": made - len(crops), "people": people,
              "real_people_available": len(real), "per_class": per_class, "seconds": round(seconds, 1),
              "faces_per_second": round(made / max(seconds, 1e-9), 2),
              "setup_seconds": round(seconds - loop_seconds, 1),
              "loop_faces_per_second": round(made / max(loop_seconds, 1e-9), 2), "seed": seed,
              "keep_rule": f"intended class is the classifier's top class or has p >= {KEEP_PROB} (one view)"}
    write_atomic(out / "report.json", json.dumps(report, indent=1).encode())
    return report


class _LazySamples(Sequence):
    """The fitted real faces of a folder, each read when a person is drawn from it: reading all
    870 of them up front took ~20 s of a run's start."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.names = sorted(f.stem for f in folder.glob("*.npz") if not f.name.endswith(".tmp.npz"))

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int):
        from core.appearance.samples import load_samples
        return load_samples(self.folder, [self.names[i]])[0]


def _write_images(out: Path, name: str, image: np.ndarray, crop: np.ndarray) -> None:
    if not (cv2.imwrite(str(out / "images" / f"{name}.jpg"), image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
            and cv2.imwrite(str(out / "crops" / f"{name}.png"), crop)):
        raise SynthError(f"could not write {name} into {out} (disk full or folder removed?)")


HEADER = (["file", "label", "kept", "classifier_label", "classifier_p_label", "box_x", "box_y", "box_w", "box_h",
           "intensity", "asymmetry", "yaw", "pitch", "roll", "source", "hair"]
          + list(AU_BLENDSHAPES) + [f"w_{n}" for n in EXPRESSION_NAMES])


def _row(name: str, f, ok: bool, p: np.ndarray, li: int) -> list:
    m = f.meta
    return ([name, f.label, int(ok), FER_CLASSES[int(np.argmax(p))], round(float(p[li]), 4)]
            + [round(v, 1) for v in f.box]
            + [round(m["intensity"], 3), round(m["asymmetry"], 3), round(m["yaw"], 2), round(m["pitch"], 2),
               round(m["roll"], 2), m["source"], m["hair"]]
            + [round(f.aus[a], 3) for a in AU_BLENDSHAPES] + [round(float(v), 3) for v in f.weights])
