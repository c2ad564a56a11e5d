"""Batch inputs: folders, glob patterns, single files and input manifests (CSV or JSONL) become
a list of `Item`s with stable keys (for resume) and unique output names.

Input manifest (docs/BATCH.md): one item per CSV row / JSON line with `input` (a path, relative to
the manifest's folder), an optional `id` (output name) and any of the command's per-item options.
"""
from __future__ import annotations

import csv
import glob
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

from .adapter import BatchAdapter, Item

MANIFEST_SUFFIXES = (".csv", ".jsonl", ".ndjson")
MAX_MANIFEST_BYTES = 256 * 2 ** 20
MAX_ITEMS = 5_000_000
MAX_LINE_CHARS = 64 * 1024
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")


class ManifestError(ValueError):
    """An input manifest that cannot be used; the message names the file and line."""


def is_manifest(path: str | Path) -> bool:
    return Path(path).suffix.lower() in MANIFEST_SUFFIXES


def read_manifest(path: str | Path, options: dict | None = None, paths: bool = True) -> list[dict[str, Any]]:
    """Rows of an input manifest as {"input": abs path, "id": str|None, "options": {...}, "line": n}.

    `options` maps option name -> `Option` (the command's per-item options); None accepts any
    scalar option values unchecked (used by the fuzz harness and docs checks). With paths=False the
    `input` (or `prompt`) column is text, kept as written. Raises ManifestError.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ManifestError(f"cannot read input manifest {path}: {exc.strerror or exc}") from None
    if size > MAX_MANIFEST_BYTES:
        raise ManifestError(f"input manifest {path} is {size / 2 ** 20:.0f} MB; the limit is "
                            f"{MAX_MANIFEST_BYTES // 2 ** 20} MB (split it into several manifests)")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise ManifestError(f"{path.name} line {line}: not UTF-8 text") from None
    except OSError as exc:
        raise ManifestError(f"cannot read input manifest {path}: {exc.strerror or exc}") from None
    if "\x00" in text:
        raise ManifestError(f"{path.name} is not a text file (it holds NUL bytes)")
    raw = _read_jsonl(path, text) if path.suffix.lower() in (".jsonl", ".ndjson") else _read_csv(path, text)
    if not raw:
        raise ManifestError(f"input manifest {path} lists no items")
    rows, ids = [], {}
    for line, fields in raw:
        rows.append(_row(path, line, fields, options, paths))
        rid = rows[-1]["id"]
        if rid is not None:
            if rid in ids:
                raise ManifestError(f"{path.name} line {line}: id {rid!r} is already used on line {ids[rid]}")
            ids[rid] = line
    return rows


def _read_csv(path: Path, text: str) -> list[tuple[int, dict]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    out, header = [], None
    try:
        for cells in reader:
            line = reader.line_num
            if not cells or all(not c.strip() for c in cells):
                continue
            if any(len(c) > MAX_LINE_CHARS for c in cells):
                raise ManifestError(f"{path.name} line {line}: a cell is longer than {MAX_LINE_CHARS} characters")
            if header is None:
                header = [c.strip().lower().replace("-", "_") for c in cells]
                if "input" not in header and "prompt" not in header:
                    raise ManifestError(f"{path.name}: the first row must be a header naming an 'input' column "
                                        f"(got {', '.join(map(repr, header[:8]))})")
                dup = sorted({h for h in header if header.count(h) > 1 and h})
                if dup:
                    raise ManifestError(f"{path.name}: column {dup[0]!r} appears twice in the header")
                continue
            if len(cells) > len(header):
                raise ManifestError(f"{path.name} line {line}: {len(cells)} cells but the header has {len(header)}")
            out.append((line, {h: c for h, c in zip(header, cells) if h and c.strip() != ""}))
            if len(out) > MAX_ITEMS:
                raise ManifestError(f"{path.name}: more than {MAX_ITEMS} items (split it into several manifests)")
    except csv.Error as exc:
        raise ManifestError(f"{path.name} line {reader.line_num}: malformed CSV ({exc})") from None
    if header is None:
        raise ManifestError(f"input manifest {path} is empty")
    return out


def _read_jsonl(path: Path, text: str) -> list[tuple[int, dict]]:
    out = []
    for line, s in enumerate(text.splitlines(), 1):
        s = s.strip()
        if not s:
            continue
        if len(s) > MAX_LINE_CHARS:
            raise ManifestError(f"{path.name} line {line}: longer than {MAX_LINE_CHARS} characters")
        try:
            obj = json.loads(s, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise ManifestError(f"{path.name} line {line}: not valid JSON ({str(exc)[:80]})") from None
        if not isinstance(obj, dict):
            raise ManifestError(f"{path.name} line {line}: each line must be a JSON object with an \"input\" key")
        out.append((line, {str(k).strip().lower().replace("-", "_"): v for k, v in obj.items() if v is not None}))
        if len(out) > MAX_ITEMS:
            raise ManifestError(f"{path.name}: more than {MAX_ITEMS} items (split it into several manifests)")
    return out


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number")


def _row(path: Path, line: int, fields: dict, options: dict | None, paths: bool = True) -> dict[str, Any]:
    where = f"{path.name} line {line}"
    if paths and "input" not in fields and "prompt" in fields:
        raise ManifestError(f"{where}: this command takes files: name them in an 'input' column")
    src = fields.get("input", fields.get("prompt") if not paths else None)
    if not isinstance(src, str) or not src.strip():
        raise ManifestError(f"{where}: 'input' must be a file path" if paths else f"{where}: 'input' (or 'prompt') "
                            f"must be text")
    src = src.strip()
    if len(src) > 4096 or "\x00" in src or not _encodable(src):
        raise ManifestError(f"{where}: 'input' is not a usable path")
    rid = fields.get("id")
    if rid is not None:
        if not isinstance(rid, (str, int)) or isinstance(rid, bool) or not _SAFE_ID.match(str(rid).strip()):
            raise ManifestError(f"{where}: id {str(rid)[:40]!r} must be 1-120 letters, digits, '.', '_' or '-' "
                                f"(it names the output files)")
        rid = str(rid).strip()
    opts = {}
    for name, value in fields.items():
        if name in ("input", "id") or name.startswith("_") or (name == "prompt" and not paths):
            continue
        if options is None:
            if isinstance(value, (dict, list)):
                raise ManifestError(f"{where}: option {name!r} must be a single value")
            opts[name] = value
            continue
        if name not in options:
            known = ", ".join(sorted(options)) or "none"
            raise ManifestError(f"{where}: unknown option {name!r} (this command's options: {known}; "
                                f"columns starting with '_' are ignored)")
        try:
            opts[name] = options[name].parse(value)
        except ValueError as exc:
            raise ManifestError(f"{where}: {exc}") from None
    if not paths:
        return {"input": " ".join(src.split()), "id": rid, "options": opts, "line": line}
    p = Path(src).expanduser()
    return {"input": str(p if p.is_absolute() else (path.parent / p).resolve()), "id": rid,
            "options": opts, "line": line}


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")          # a JSON "\\ud800" escape decodes to a lone surrogate
    except UnicodeEncodeError:
        return False
    return True


def item_key(command: str, input_path: str, options: dict) -> str:
    blob = json.dumps([command, input_path, sorted(options.items())], sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def read_text_list(p: Path, spec: str, adapter: BatchAdapter) -> list[str]:
    """The lines of a .txt list (one prompt per line; blank lines and lines starting '#' skipped)."""
    if not p.is_file() or p.suffix.lower() not in adapter.suffixes:
        raise FileNotFoundError(f"{spec}: '{adapter.name}' takes {'/'.join(sorted(adapter.suffixes))} lists "
                                f"(one per line) or .csv/.jsonl input manifests")
    if p.stat().st_size > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{p} is larger than {MAX_MANIFEST_BYTES // 2 ** 20} MB")
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError(f"{p.name} is not UTF-8 text") from None
    lines = [" ".join(ln.split()) for ln in text.splitlines()]
    out = [ln for ln in lines if ln and not ln.startswith("#")]
    if not out:
        raise ManifestError(f"{p} lists nothing")
    if any(len(ln) > MAX_LINE_CHARS for ln in out):
        raise ManifestError(f"{p.name}: a line is longer than {MAX_LINE_CHARS} characters")
    return out


def _text_id(text: str) -> str:
    """A readable, unique-enough name for a text input: its first words and a short hash."""
    words = re.sub(r"[^A-Za-z0-9]+", "_", text.lower()).strip("_")[:40].strip("_") or "item"
    return f"{words}-{hashlib.sha1(text.encode('utf-8', 'replace')).hexdigest()[:6]}"


def _stem_id(rel: str) -> str:
    stem = rel.rsplit(".", 1)[0] if "." in Path(rel).name else rel
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", stem.replace("/", "__").replace("\\", "__")).strip("._-")
    return (s or "item")[:100]


def collect_items(inputs: list[str], adapter: BatchAdapter, batch_options: dict[str, Any]) -> tuple[list[Item], list[str]]:
    """Expand INPUTS into items (sorted within each input, duplicates dropped) and notes for the
    user (e.g. files skipped for their suffix). Raises ManifestError / FileNotFoundError."""
    specs: list[tuple[str, str, str | None, dict]] = []   # (abs input, relative name, id, options)
    notes: list[str] = []
    option_map = {o.name: o for o in adapter.options}
    for spec in inputs:
        p = Path(spec).expanduser()
        if is_manifest(p) and p.is_file():
            for row in read_manifest(p, option_map, paths=adapter.inputs_are_files):
                name = Path(row["input"]).name if adapter.inputs_are_files else _text_id(row["input"])
                specs.append((row["input"], name, row["id"], row["options"]))
            continue
        if not adapter.inputs_are_files:
            specs += [(text, _text_id(text), None, {}) for text in read_text_list(p, spec, adapter)]
            continue
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
            root = p
        elif p.is_file():
            files, root = [p], p.parent
        elif glob.has_magic(spec):
            files = sorted(Path(f) for f in glob.glob(str(p), recursive=True) if Path(f).is_file())
            root = Path(spec.split("*")[0].split("?")[0].split("[")[0]).expanduser()
            root = root if root.is_dir() else root.parent
            if not files:
                raise FileNotFoundError(f"no files match {spec}")
        else:
            raise FileNotFoundError(f"input not found: {spec} (give folders, files, glob patterns in quotes, "
                                    f"or a .csv/.jsonl input manifest)")
        usable = [f for f in files if f.suffix.lower() in adapter.suffixes]
        other = sorted({f.suffix.lower() or "(none)" for f in files} - set(adapter.suffixes))
        if len(usable) < len(files):
            notes.append(f"{spec}: skipped {len(files) - len(usable)} file(s) that are not "
                         f"{adapter.name} inputs ({', '.join(other[:6])})")
        if not usable and (p.is_dir() or glob.has_magic(spec)):
            raise FileNotFoundError(f"no {adapter.name} inputs ({', '.join(sorted(adapter.suffixes))}) in {spec}")
        if p.is_file() and not usable:
            raise FileNotFoundError(f"{spec} is not a {adapter.name} input "
                                    f"({', '.join(sorted(adapter.suffixes))}) or an input manifest")
        for f in usable:
            a = f.resolve()
            try:
                rel = str(a.relative_to(root.resolve()))
            except ValueError:
                rel = a.name
            specs.append((str(a), rel, None, {}))
    items, rels, seen_keys, used_ids = [], [], set(), {}
    for src, rel, rid, opts in specs:
        merged = {**batch_options, **opts}
        key = item_key(adapter.name, src, merged)
        if key in seen_keys:
            continue
        seen_keys.add(key)
        items.append(Item(key, rid or "", src, merged))
        rels.append(_stem_id(rel))
        if rid:
            used_ids[rid] = src
    # names: the given id, else the path below its folder; a clash gets a short hash of the path
    counts: dict[str, int] = {}
    for it, stem in zip(items, rels):
        if not it.id:
            counts[stem] = counts.get(stem, 0) + 1
    for it, stem in zip(items, rels):
        if it.id:
            continue
        if counts[stem] > 1 or stem in used_ids:
            tag = hashlib.sha1(f"{it.input}|{sorted(it.options.items())}".encode()).hexdigest()[:8]
            stem = f"{stem}-{tag}"
        it.id = stem
        used_ids[stem] = it.input
    return items, notes
