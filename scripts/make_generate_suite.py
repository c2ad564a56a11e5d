"""Write the held-out prompt suite of text-to-avatar -> resources/generate/prompts_heldout.tsv.

Prompts use the lexicon's synonyms that training captions never use (index >= CAPTION_SYNONYMS
where a list has them) and sentence frames the captioner does not have; each line carries the
requested directions as labels written here, not read back by the model's reader:

    PROMPT <TAB> attr=+|-[,attr=+|-...] <TAB> kind (single / contrast-hi / contrast-lo / multi)
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.generate.lexicon import CAPTION_SYNONYMS, SCALAR_WORDS  # noqa: E402

FRAMES = ("I want {x}", "give me somebody who has {x}", "show a character featuring {x}",
          "{x}, please", "create a head that has {x}", "make someone with {x}")
# colour attributes are asked for by colour names (their own words)
COLOUR_PROMPTS = {
    ("hair_lightness", "+"): ["golden hair", "platinum hair"], ("hair_lightness", "-"): ["jet-black hair", "black hair"],
    ("hair_redness", "+"): ["copper hair", "auburn hair"], ("grey_hair", "+"): ["silver hair", "white hair"],
    ("eye_blueness", "+"): ["icy eyes", "blue eyes"], ("eye_blueness", "-"): ["amber eyes", "hazel eyes"],
    ("eye_lightness", "+"): ["pale eyes", "light eyes"], ("eye_lightness", "-"): ["dark eyes"],
    ("facial_hair", "+"): ["a thick moustache", "a goatee"], ("facial_hair", "-"): ["a clean-shaven face"],
    ("freckles", "+"): ["a freckled face", "lots of freckles"], ("freckles", "-"): ["no freckles"],
}
SKIP = {"hair_redness", "grey_hair", "hair_lightness", "eye_blueness", "eye_lightness", "facial_hair",
        "freckles", "hair_length"}


def phrase(attr: str, sign: str, rng: np.random.Generator) -> str:
    if (attr, sign) in COLOUR_PROMPTS:
        return str(rng.choice(COLOUR_PROMPTS[(attr, sign)]))
    nouns, hi, lo = SCALAR_WORDS[attr]
    words = hi if sign == "+" else lo
    held = words[CAPTION_SYNONYMS:] or words
    noun = nouns[-1] if len(nouns) > 1 and rng.random() < 0.5 else nouns[0]
    adj = str(rng.choice(held))
    art = ("an " if adj[0] in "aeiou" else "a ") if not noun.endswith("s") else ""
    return f"{art}{adj} {noun}"


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=2026, help="2026 writes the test suite")
    ap.add_argument("--multi", type=int, default=48, help="multi-attribute prompts to draw")
    ap.add_argument("--out", default=None, help="default resources/generate/prompts_heldout.tsv")
    ap.add_argument("--exclude", default=None, help="a suite whose prompts and requests this one must not repeat")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    banned: set[str] = set()
    if args.exclude:
        for line in Path(args.exclude).read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                parts = line.split("\t")
                banned.add(parts[0])
                if len(parts) > 1 and "," in parts[1]:
                    banned.add(",".join(sorted(parts[1].split(","))))
    lines = []
    attrs = [a for a in SCALAR_WORDS if a not in SKIP or (a, "+") in COLOUR_PROMPTS]
    for attr in attrs:
        signs = [s for s in "+-" if (attr, s) in COLOUR_PROMPTS or (attr not in SKIP and SCALAR_WORDS[attr][1 if s == "+" else 2])]
        frame = str(rng.choice(FRAMES))
        for s in signs:
            kind = "single" if len(signs) == 1 else ("contrast-hi" if s == "+" else "contrast-lo")
            lines.append((frame.format(x=phrase(attr, s, rng)), f"{attr}={s}", kind + f":{attr}"))
    for _ in range(args.multi):
        k = int(rng.integers(2, 4))
        chosen = rng.choice(len(attrs), size=k, replace=False)
        parts, labels, nouns = [], [], set()
        for c in chosen:
            attr = attrs[int(c)]
            noun = SCALAR_WORDS[attr][0][0]
            if noun in nouns:
                continue
            nouns.add(noun)
            ok = [s for s in "+-" if (attr, s) in COLOUR_PROMPTS or (attr not in SKIP and SCALAR_WORDS[attr][1 if s == "+" else 2])]
            s = str(rng.choice(ok))
            parts.append(phrase(attr, s, rng))
            labels.append(f"{attr}={s}")
        if len(parts) < 2 or ",".join(sorted(labels)) in banned:
            continue
        body = ", ".join(parts[:-1]) + " as well as " + parts[-1]
        lines.append((str(rng.choice(FRAMES)).format(x=body), ",".join(labels), "multi"))
    lines = [ln for ln in lines if ln[0] not in banned]
    out = Path(args.out) if args.out else Path(__file__).resolve().parents[1] / "resources" / "generate" / "prompts_heldout.tsv"
    out.parent.mkdir(parents=True, exist_ok=True)
    head = "held-out prompt suite" if args.seed == 2026 else f"validation prompt suite (seed {args.seed})"
    out.write_text(f"# {head} (scripts/make_generate_suite.py): prompt, labels, kind\n"
                   + "".join(f"{p}\t{lab}\t{k}\n" for p, lab, k in lines))
    print(f"wrote {out}: {len(lines)} prompts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
