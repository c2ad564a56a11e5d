"""Which commands `python main.py batch` knows: one module per command in core/batch/jobs/,
each defining `ADAPTER` (a `BatchAdapter`). A module not written yet is skipped, so commands
being written elsewhere join by adding their name here and their module there."""
from __future__ import annotations

import importlib

from .adapter import BatchAdapter

JOB_MODULES = ("fit", "fer", "track", "generate", "listen")


def adapters() -> dict[str, BatchAdapter]:
    found = {}
    for name in JOB_MODULES:
        try:
            mod = importlib.import_module(f"core.batch.jobs.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"core.batch.jobs.{name}":
                continue
            raise
        found[mod.ADAPTER.name] = mod.ADAPTER
    return found


def get_adapter(name: str) -> BatchAdapter:
    found = adapters()
    if name not in found:
        raise ValueError(f"'{name}' cannot run as a batch (batch commands: {', '.join(found)})")
    return found[name]
