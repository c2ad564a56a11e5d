"""`python main.py eval-generate [--prompts FILE]`: text-to-avatar figures on the held-out
prompt suite, with the three baselines measured in the same run; last line JSON."""
from __future__ import annotations

import json
import time

from core.commands import UserError

NAME = "eval-generate"
HELP = "Evaluate text-to-avatar on the held-out prompt suite against three baselines."


def add_arguments(p) -> None:
    p.add_argument("--prompts", default=None, help="prompt suite TSV: PROMPT<TAB>attr=+|-,...[<TAB>kind] "
                   "(default resources/generate/prompts_heldout.tsv)")
    p.add_argument("--seeds", type=int, default=4, help="samples per prompt (default 4)")
    from core.generate.generator import DEFAULT_GUIDANCE
    p.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE,
                   help=f"classifier-free guidance (default {DEFAULT_GUIDANCE:g}, chosen on the validation suite)")
    p.add_argument("--model", default=None, help="generation model file (default: the shipped one)")
    p.add_argument("--quick", action="store_true", help="fewer prompts and seeds (a smoke run)")


def _row(name: str, r: dict) -> str:
    fam = " ".join(f"{k} {v:.2f}" for k, v in r["direction_accuracy"].items())
    return (f"{name:<22} direction {r['direction_accuracy_mean']:.3f} | contrast sign "
            f"{r['contrast_right_sign'] if r['contrast_right_sign'] is None else round(r['contrast_right_sign'], 3)}"
            f" leakage {r['contrast_leakage'] if r['contrast_leakage'] is None else round(r['contrast_leakage'], 3)}"
            f" | R-precision@{r['r_precision_pool']} {r['r_precision']:.3f} (log-prob match {r['r_precision_logprob']:.3f};"
            f" fixed first 32 {r['r_precision_fixed_first32']:.3f}, distinct {r['r_precision_fixed_first32_distinct']:.3f})"
            f" | in prior p99 {r['within_prior_p99']:.3f}"
            f" | {r['seconds']} s\n{'':<22} per family: {fam}")


def run(args) -> int:
    from core.commands.generate import load_generator
    from core.generate.evaluate import (EmbeddingCache, diversity, evaluate_method, load_suite, model_method,
                                        random_method, regression_method, retrieval_method, timing)
    from core.generate.text import TextEncoder, TextEncoderError

    if not 1 <= args.seeds <= 16:
        raise UserError(f"--seeds must be 1 to 16, got {args.seeds}")
    try:
        suite = load_suite(args.prompts)
    except (OSError, UnicodeError) as exc:
        raise UserError(f"cannot read the prompt suite: {exc}") from None
    seeds = list(range(2 if args.quick else args.seeds))
    if args.quick:  # contrast pairs and multi-attribute prompts both
        suite = suite[:24] + [p for p in suite if p.kind == "multi"][:16]
    gen = load_generator(args.model)
    t0 = time.perf_counter()
    methods = {"model": model_method(gen, args.guidance),
               "model, not disentangled": model_method(gen, args.guidance, disentangle=False),
               "model, guidance 0": model_method(gen, 0.0),
               "baseline: prior sample": random_method(gen)}
    if gen.baselines:
        try:
            embed = EmbeddingCache(TextEncoder(), [p.text for p in suite])
            methods["baseline: NN retrieval"] = retrieval_method(gen, embed)
            methods["baseline: linear"] = regression_method(gen, embed)
        except TextEncoderError as exc:
            print(f"text encoder unavailable, retrieval/linear baselines skipped: {exc}")
    else:
        print("this model file carries no baseline data (train to the end to add it)")
    print(f"{len(suite)} prompts x {len(seeds)} seeds; attributes measured on the generated meshes and textures")
    results = {}
    for name, m in methods.items():
        results[name] = evaluate_method(gen, m, suite, seeds)
        print(_row(name, results[name]), flush=True)
    worst = sorted(results["model"]["r_precision_per_prompt"].items(), key=lambda kv: kv[1])[:6]
    print("model R-precision, weakest requests: " + "; ".join(f"'{t}' {v:.2f}" for t, v in worst))
    probe = ([p.text for p in suite if p.kind == "multi"] or [p.text for p in suite])[:4 if not args.quick else 2]
    div_model = diversity(gen, methods["model"], probe)
    div_prior = diversity(gen, methods["baseline: prior sample"], probe)
    print(f"diversity (pairwise vertex RMS of 8 samples): model {div_model:.3f} cm, prior {div_prior:.3f} cm, "
          f"ratio {div_model / div_prior:.2f}")
    t1 = timing(gen, suite[-1].text, 1)
    t4 = timing(gen, suite[-1].text, 4)
    print(f"time: prompt -> shown avatar {t1['prompt_to_shown_s']:.2f} s (generate {t1['generate_s']:.3f} s); "
          f"4 candidates {t4['generate_s']:.3f} s, first shown {t4['prompt_to_shown_s']:.2f} s")
    m = results["model"]
    beats = {b: bool(m["direction_accuracy_mean"] > r["direction_accuracy_mean"] and m["r_precision"] > r["r_precision"])
             for b, r in results.items() if b.startswith("baseline")}
    print("model beats " + ", ".join(f"{b.split(': ')[1]}: {'yes' if v else 'NO'}" for b, v in beats.items()))
    print(json.dumps({"prompts": len(suite), "seeds": len(seeds), "guidance": args.guidance,
                      "results": {k: {kk: vv for kk, vv in v.items() if kk != "r_precision_per_prompt"}
                                  for k, v in results.items()},
                      "diversity_model_cm": round(div_model, 4), "diversity_prior_cm": round(div_prior, 4),
                      "diversity_ratio": round(div_model / div_prior, 3), "timing_1": t1, "timing_4": t4,
                      "beats_baselines": beats, "seconds": round(time.perf_counter() - t0, 1)}))
    return 0
