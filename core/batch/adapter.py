"""What a batchable command tells the batch runner: its inputs, its per-item options, how a
worker loads its models once and how it turns one input into output files.

A command joins `python main.py batch` with one module in `core/batch/jobs/` that defines
`ADAPTER = MyAdapter()` and one entry in `core.batch.registry.JOB_MODULES`.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator


@dataclass(frozen=True)
class Option:
    """A per-item option: a `--flag` for the whole batch and a column/key of an input manifest."""
    name: str                       # snake_case; the flag is --name-with-dashes
    type: type                      # int, float, str or bool
    default: Any
    help: str
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, value: Any) -> Any:
        """The option's value from a manifest cell or JSON value; ValueError with a reason."""
        if self.type is bool:
            if isinstance(value, bool):
                v = value
            elif isinstance(value, (int, float)) and value in (0, 1):
                v = bool(value)
            elif isinstance(value, str) and value.strip().lower() in _BOOLS:
                v = _BOOLS[value.strip().lower()]
            else:
                raise ValueError(f"{self.name} must be true or false, got {_show(value)}")
        elif self.type is int:
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                if not (isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53):
                    raise ValueError(f"{self.name} must be a whole number, got {_show(value)}")
            try:
                v = int(value) if not isinstance(value, str) else int(value.strip(), 10)
            except (ValueError, OverflowError):
                raise ValueError(f"{self.name} must be a whole number, got {_show(value)}") from None
        elif self.type is float:
            try:
                v = float(value) if not isinstance(value, bool) else None
            except (ValueError, TypeError, OverflowError):
                v = None
            if v is None or v != v or v in (float("inf"), float("-inf")):
                raise ValueError(f"{self.name} must be a number, got {_show(value)}")
        else:
            if not isinstance(value, str):
                raise ValueError(f"{self.name} must be text, got {_show(value)}")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"{self.name} holds characters that are not text") from None
            v = value.strip()
        if self.choices is not None and v not in self.choices:
            raise ValueError(f"{self.name} must be one of {', '.join(map(str, self.choices))}, got {_show(value)}")
        if self.minimum is not None and v < self.minimum:
            raise ValueError(f"{self.name} must be at least {self.minimum:g}, got {_show(value)}")
        if self.maximum is not None and v > self.maximum:
            raise ValueError(f"{self.name} must be at most {self.maximum:g}, got {_show(value)}")
        return v


_BOOLS = {"1": True, "true": True, "yes": True, "y": True, "0": False, "false": False, "no": False,
          "n": False, "": False}


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class Item:
    """One unit of work: an input file and its options (batch-wide flags + manifest overrides)."""
    key: str                        # stable identity for resume: command + absolute input + options
    id: str                         # output name stem, unique within the batch
    input: str                      # absolute path (or the text, for text-driven commands)
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"key": self.key, "id": self.id, "input": self.input, "options": dict(self.options)}


@dataclass
class ItemResult:
    outputs: list[str]              # file names written into the output folder
    figures: dict[str, Any]         # small JSON-able numbers/labels describing the result


class ItemFailed(Exception):
    """The item's input is unusable (the message says why, for the user); the batch carries on."""


class BatchAdapter:
    """Subclass per command. Methods run inside a worker process (maybe on another machine)."""
    name: str = ""
    help: str = ""
    suffixes: frozenset[str] = frozenset()   # input files a folder or glob contributes (lower case)
    options: tuple[Option, ...] = ()
    # settings for the whole batch only (e.g. a model path): flags, handed to `load`
    worker_options: tuple[Option, ...] = ()
    # a worker's resident memory after loading its models is about this (MB); used for defaults
    typical_memory_mb: int = 1500
    # False for commands driven by text (generate): an item's `input` is the text itself, given in a
    # manifest's `input` (or `prompt`) column or one per line of a .txt list
    inputs_are_files: bool = True

    def load(self, threads: int, settings: dict[str, Any]) -> Any:
        """Load models once per worker (`settings`: the worker_options' values); the returned
        state is handed to every `process` call."""
        return None

    def process(self, state: Any, item: Item, out_dir: Path) -> ItemResult:
        """Write the item's outputs into out_dir (atomically) and return their names + figures.
        Raise ItemFailed (or a reader's own user-facing error) when the input is unusable."""
        raise NotImplementedError

    def outputs(self, item: Item) -> list[str]:
        """The output names a finished item must have (resume checks they exist)."""
        raise NotImplementedError

    def close(self, state: Any) -> None:
        pass


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix, so writers pick the right format);
    it replaces `path` only when the block finishes, so a killed item leaves no half file."""
    tmp = path.with_name(f".{path.stem}.part{os.getpid()}{path.suffix}")
    try:
        yield tmp
        if not tmp.exists():
            raise ItemFailed(f"{path.name} was not written")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
