"""Text-to-avatar benchmark (issue 25). Prints figures, then one JSON line.

    python bench/generate.py [--quick] [--seeds 4]

1. Speed on this machine: prompt -> candidates, and prompt -> first shown avatar (the mesh at
   the viewport's budget, posed, and its texture decoded), for 1 and 4 candidates; the model
   load time; the baseline in the same run is a random prior sample shown the same way, so the
   ratio says what the diffusion adds.
2. Quality (core.generate.evaluate on the held-out suite): direction accuracy per family,
   contrast-pair sign and leakage, R-precision@32, diversity and plausibility, beside the three
   baselines measured in the same run (prior sample, NN retrieval by text embedding, linear).
3. Editing: targeted attribute moves the right way, other attributes' mean |z change| over the
   targeted one's, over a set of edit sentences on generated avatars.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

EDITS = [("make the nose longer", "nose_length", 1), ("a shorter nose", "nose_length", -1),
         ("make the nose wider", "nose_width", 1), ("a narrower nose", "nose_width", -1),
         ("fuller lips", "lip_thickness", 1), ("thinner lips", "lip_thickness", -1),
         ("a longer face", "face_length", 1), ("a wider face", "face_width", 1),
         ("bigger eyes", "eye_size", 1), ("bigger ears", "ears", 1), ("a stronger chin", "chin", 1),
         ("darker hair", "hair_lightness", -1), ("lighter hair", "hair_lightness", 1),
         ("darker skin", "skin_tone", -1), ("lighter skin", "skin_tone", 1),
         ("thicker eyebrows", "brow_thickness", 1), ("rosier cheeks", "cheek_colour", 1)]


def edit_figures(gen, seeds: list[int], strength: float = 0.6) -> dict:
    from core.generate.attributes import INDEX, SCALARS
    right, leak = [], []
    per: dict[str, list[float]] = {}
    for s in seeds:
        base = gen.generate("", n=1, seed=1000 + s)[0]
        avatar = base.to_avatar()
        z0 = gen.candidate_z([base])[0]
        for text, attr, sign in EDITS:
            out = gen.edit(avatar, text, strength=strength, seed=s)
            z1 = gen.candidate_z([out])[0]
            d = z1 - z0
            j = INDEX[attr]
            ok = float(np.sign(d[j]) == sign)
            right.append(ok)
            per.setdefault(text, []).append(ok)
            others = [INDEX[a] for a in SCALARS if a != attr and not (attr.startswith("hair") and a.startswith("hair"))]
            leak.append(float(np.abs(d[others]).mean() / max(abs(d[j]), 1e-6)))
    return {"edit_right": float(np.mean(right)), "edit_leakage_median": float(np.median(leak)),
            "edit_leakage_mean": float(np.mean(leak)), "edits": len(right),
            "per_edit": {k: float(np.mean(v)) for k, v in per.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    from core.appearance import shared_model
    from core.generate.evaluate import (EmbeddingCache, diversity, evaluate_method, load_suite, model_method,
                                        random_method, regression_method, retrieval_method, timing)
    from core.generate.generator import TextToAvatar
    from core.generate.text import TextEncoder

    t0 = time.perf_counter()
    gen = TextToAvatar()
    load_s = time.perf_counter() - t0
    suite = load_suite()
    seeds = list(range(2 if args.quick else args.seeds))
    if args.quick:  # contrast pairs and multi-attribute prompts both
        suite = suite[:24] + [p for p in suite if p.kind == "multi"][:16]
    prompt = "a long narrow nose, full lips, high cheekbones, short blond hair, blue eyes"
    # speed, with the prior-sample baseline shown the same way
    t1 = timing(gen, prompt, 1)
    t4 = timing(gen, prompt, 4)
    model, am = gen.face_model, shared_model()
    rng = np.random.default_rng(0)
    base = []
    for _ in range(3):
        t = time.perf_counter()
        ident = model.sample_identity(rng)
        mesh = model.extract_mesh(ident, resolution=128, max_triangles=30000)
        model.animator(mesh, ident).vertices(np.zeros(53, np.float32))
        am.decode(am.sample(rng))
        base.append(time.perf_counter() - t)
    base_s = float(np.median(base))
    print(f"model load {load_s:.2f} s")
    print(f"prompt -> shown avatar: {t1['prompt_to_shown_s']:.3f} s (sampling {t1['generate_s']:.3f} s); "
          f"random prior sample shown the same way {base_s:.3f} s; ratio {t1['prompt_to_shown_s'] / base_s:.2f}")
    print(f"4 candidates: sampling {t4['generate_s']:.3f} s, first shown {t4['prompt_to_shown_s']:.3f} s")
    methods = {"model": model_method(gen), "prior sample": random_method(gen)}
    if gen.baselines:
        embed = EmbeddingCache(TextEncoder(), [p.text for p in suite])
        methods["NN retrieval"] = retrieval_method(gen, embed)
        methods["linear"] = regression_method(gen, embed)
    quality = {}
    for name, m in methods.items():
        r = evaluate_method(gen, m, suite, seeds)
        quality[name] = r
        print(f"{name:<14} direction {r['direction_accuracy_mean']:.3f}  contrast sign {r['contrast_right_sign']:.3f}"
              f"  leakage {r['contrast_leakage']:.3f}  R-precision {r['r_precision']:.3f} (fixed first 32 {r['r_precision_fixed_first32']:.3f})  in p99 {r['within_prior_p99']:.3f}")
    probe = ([p.text for p in suite if p.kind == "multi"] or [p.text for p in suite])[:3]
    dm, dp = diversity(gen, methods["model"], probe), diversity(gen, methods["prior sample"], probe)
    print(f"diversity: model {dm:.3f} cm, prior {dp:.3f} cm, ratio {dm / dp:.2f}")
    ed = edit_figures(gen, seeds[:2] if args.quick else seeds)
    print(f"editing: right direction {ed['edit_right']:.3f} over {ed['edits']} edits; leakage median "
          f"{ed['edit_leakage_median']:.3f}, mean {ed['edit_leakage_mean']:.3f}")
    for k, v in ed["per_edit"].items():
        print(f"  {k:<22} {v:.2f}")
    print(json.dumps({"load_s": round(load_s, 3), "timing_1": t1, "timing_4": t4,
                      "baseline_prior_shown_s": round(base_s, 3),
                      "shown_ratio_vs_prior": round(t1["prompt_to_shown_s"] / base_s, 3),
                      "quality": {k: {kk: vv for kk, vv in v.items() if kk not in ("per_attribute", "r_precision_per_prompt")} for k, v in quality.items()},
                      "diversity_ratio": round(dm / dp, 3), "editing": ed,
                      "seconds": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
