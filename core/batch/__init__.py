"""Batch work over folders on Ray: `python main.py batch COMMAND INPUTS... --out DIR` (docs/BATCH.md).

`inputs.py` turns folders/globs/input manifests into `Item`s, `runner.py` runs them on Ray actors
(`worker.py`), `results.py` keeps the output folder's manifest (resume), `progress.py` the bar;
each batchable command is a `BatchAdapter` (`adapter.py`) in `jobs/`, listed in `registry.py`.
"""
from .adapter import BatchAdapter, Item, ItemFailed, ItemResult, Option
from .inputs import ManifestError, collect_items, read_manifest
from .results import ResultsError, read_results
from .runner import BatchError, Config, Summary, run_batch

__all__ = ["BatchAdapter", "Item", "ItemFailed", "ItemResult", "Option", "ManifestError", "collect_items",
           "read_manifest", "ResultsError", "read_results", "BatchError", "Config", "Summary", "run_batch"]
