"""The output folder's bookkeeping: `batch.json` (which command the folder belongs to) and
`manifest.jsonl` (one JSON line per finished item, appended and fsynced by the driver only).

A line is written after the item's outputs are in place, so a line with status "ok" means
the outputs are complete; a torn last line (a crash mid-write) is ignored and that item reruns.
Schema: docs/BATCH.md.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

from ..atomic import write_atomic

FORMAT = "likeness-batch"
VERSION = 1
MANIFEST = "manifest.jsonl"
BATCH_FILE = "batch.json"
STATUSES = ("ok", "failed", "error")
MAX_LINE_CHARS = 256 * 1024


class ResultsError(ValueError):
    """An output folder whose bookkeeping files cannot be used (message for the user)."""


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def write_json_atomic(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=1).encode("utf-8"))


def open_batch_dir(out_dir: Path, command: str) -> dict:
    """Create or reuse the output folder; refuse one that holds another command's batch."""
    out_dir.mkdir(parents=True, exist_ok=True)
    info_path = out_dir / BATCH_FILE
    if info_path.exists():
        try:
            info = json.loads(info_path.read_text())
        except (OSError, ValueError, RecursionError) as exc:
            raise ResultsError(f"{info_path} is damaged ({str(exc)[:80]}); delete it to reuse the folder") from None
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            raise ResultsError(f"{info_path} is not a Likeness batch file")
        if info.get("command") != command:
            raise ResultsError(f"{out_dir} holds a '{info.get('command')}' batch; use another --out for "
                               f"'{command}'")
        if not isinstance(info.get("version"), int) or info["version"] > VERSION:
            raise ResultsError(f"{info_path} was written by a newer Likeness (version {info.get('version')})")
        return info
    if any(out_dir.iterdir()):
        raise ResultsError(f"{out_dir} is not empty and holds no batch; give an empty or new folder to --out")
    info = {"format": FORMAT, "version": VERSION, "command": command, "created": now_iso()}
    write_json_atomic(info_path, info)
    return info


def read_results(path: Path) -> tuple[dict[str, dict], int]:
    """The newest record per item key from a results manifest, and 1 when its last line was torn
    by a crash (ignored: that item runs again). A missing file is an empty manifest; a damaged line
    elsewhere raises ResultsError naming it (someone edited the file: we do not guess)."""
    records: dict[str, dict] = {}
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return records, 0
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from None
    torn = 0
    with f:
        for n, raw in enumerate(f, 1):
            problem = None
            if len(raw) > MAX_LINE_CHARS:
                problem = "too long"
            else:
                try:
                    rec = json.loads(raw.decode("utf-8"))
                except (ValueError, RecursionError) as exc:
                    problem = f"not JSON: {str(exc)[:60]}" if raw.strip() else None
                    rec = None
                if rec is not None and not _valid(rec):
                    problem = "not a batch record (key, id, status, outputs)"
            if problem is None:
                if rec is not None:
                    records[rec["key"]] = rec
                continue
            if not raw.endswith(b"\n"):   # only the last line can lack one: a crash mid-append
                torn = 1
                continue
            raise ResultsError(f"{path} line {n} is damaged ({problem}); delete that line to run its item again")
    return records, torn


def _valid(rec: Any) -> bool:
    return (isinstance(rec, dict) and isinstance(rec.get("key"), str) and isinstance(rec.get("id"), str)
            and rec.get("status") in STATUSES and isinstance(rec.get("outputs", []), list)
            and all(isinstance(o, str) for o in rec.get("outputs", []))
            and (rec.get("attempt") is None or (isinstance(rec["attempt"], int)
                                                and not isinstance(rec["attempt"], bool))))


def is_done(rec: dict | None, out_dir: Path, retry_failed: bool) -> bool:
    """Whether an item needs no rerun: finished ok with its outputs present, or failed on its
    input (unless retry_failed). "error" records (crashes, bugs) always rerun."""
    if rec is None:
        return False
    if rec["status"] == "ok":
        return all((out_dir / o).is_file() for o in rec.get("outputs", []) if _inside(o))
    return rec["status"] == "failed" and not retry_failed


def _inside(name: str) -> bool:
    return not (name.startswith("/") or ".." in Path(name).parts)


class ResultsLog:
    """Appends records to DIR/manifest.jsonl; each line is flushed and fsynced before the next item
    counts as finished (a record may still be lost in a crash; its item then runs again)."""

    def __init__(self, path: Path):
        self.path = path
        self._repair_tail()
        self._f = open(path, "ab")

    def _repair_tail(self) -> None:
        # a line torn by a crash is cut off, so it never ends up glued to the next record
        try:
            with open(self.path, "rb+") as f:
                end = f.seek(0, os.SEEK_END)
                if not end:
                    return
                pos = end
                while pos > 0:
                    step = min(65536, pos)
                    f.seek(pos - step)
                    chunk = f.read(step)
                    cut = chunk.rfind(b"\n")
                    if cut >= 0:
                        pos = pos - step + cut + 1
                        break
                    pos -= step
                if pos != end:
                    f.truncate(pos)
        except FileNotFoundError:
            pass

    def append(self, record: dict) -> None:
        self._f.write((json.dumps(record, separators=(",", ":"), default=_plain) + "\n").encode())
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


def _plain(value: Any):
    try:
        import numpy as np
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:
        pass
    return str(value)
