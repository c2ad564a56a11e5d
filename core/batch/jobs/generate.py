"""`batch generate`: one item per prompt (a .txt list, one per line, or a manifest's `input`/`prompt`
column) -> avatar projects, as `main.py generate`."""
from __future__ import annotations

from pathlib import Path

from core.batch.adapter import BatchAdapter, Item, ItemResult, Option, atomic_path


class GenerateAdapter(BatchAdapter):
    name = "generate"
    help = "Generate avatars for each prompt of a list: ID.likeness (+ ID_2 ... with --n) per prompt."
    suffixes = frozenset({".txt"})
    inputs_are_files = False
    options = (
        Option("n", int, 1, "candidates per prompt", minimum=1, maximum=8),
        Option("seed", int, 0, "random seed (same seed, same avatars)", minimum=0, maximum=2 ** 31 - 1),
        Option("guidance", float, 3.0, "classifier-free guidance", minimum=0.0, maximum=20.0),
        Option("negative", str, "", "negative prompt"),
        Option("steps", int, 20, "sampler steps", minimum=1, maximum=200),
        Option("export", str, "", "also export the first candidate as glb or obj", choices=("", "glb", "obj")),
        Option("preview", bool, False, "also write ID_preview.png, the candidates side by side"),
    )
    worker_options = (Option("model", str, "", "generation model file (default: the shipped one)"),)
    typical_memory_mb = 1500

    def load(self, threads: int, settings: dict):
        from core.commands.generate import load_generator
        return load_generator(settings.get("model") or None)

    def outputs(self, item: Item) -> list[str]:
        n = item.options.get("n", 1)
        names = [f"{item.id}.likeness"] + [f"{item.id}_{i}.likeness" for i in range(2, n + 1)]
        if item.options.get("export"):
            names.append(f"{item.id}.{item.options['export']}")
        if item.options.get("preview"):
            names.append(f"{item.id}_preview.png")
        return names

    def process(self, gen, item: Item, out_dir: Path) -> ItemResult:
        from core.project import save_project
        opts = item.options
        seed = opts.get("seed", 0)
        cands = gen.generate(item.input, n=opts.get("n", 1), seed=seed, guidance=opts.get("guidance", 3.0),
                             negative=opts.get("negative", ""), steps=opts.get("steps", 20))
        names = self.outputs(item)
        for i, c in enumerate(cands):
            with atomic_path(out_dir / names[i]) as tmp:
                save_project(c.to_avatar(name=f"{item.input[:40]} #{i + 1}"), tmp)
        if opts.get("export"):
            from core.export import export_avatar
            with atomic_path(out_dir / f"{item.id}.{opts['export']}") as tmp:
                export_avatar(cands[0].to_avatar(), tmp, gen.face_model)
        if opts.get("preview"):
            from PIL import Image

            from core.generate.preview import contact_sheet, render_avatar
            imgs = [render_avatar(c.to_avatar(), 256) for c in cands]
            sheet = contact_sheet(imgs, [f"#{i + 1} seed {seed}" for i in range(len(imgs))])
            with atomic_path(out_dir / f"{item.id}_preview.png") as tmp:
                Image.fromarray(sheet).save(tmp)
        reading = cands[0].reading
        return ItemResult(names, {"candidates": len(cands), "used": [list(u) for u in reading.used],
                                  "ungrounded": [list(u) for u in reading.ungrounded],
                                  "notices": list(reading.notices)})


ADAPTER = GenerateAdapter()
