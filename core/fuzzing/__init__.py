"""Mutation fuzzing of every reader of user files (issue 30).

Each reader gets valid samples made here (small, our own data), mutated by seeded byte-level and
format-aware mutations (zip members dropped, garbled or inflated, JSON fields retyped, npy and
image headers declaring huge sizes). A case passes when the reader returns data or raises its
module's own error type with a message; anything else is a crash. Cases run in worker processes
with a time limit per case (a hang kills and replaces the worker) and an address-space cap (a
blow-up from a declared size becomes MemoryError, reported as "memory").

Readers: projects (formats 1-3, paint/ folder), photos, .pts, face and FER weights, videos,
landmark tables, the appearance model, the painting core's PSD, layer image and recovery
files, animation clips (clip files, projects with clips), the listener's weights and caption references. Used by tests/test_fuzz.py (a few dozen cases per reader, fixed seeds) and bench/fuzz.py (10,000).
"""
from .mutations import make_case, mutate
from .readers import READERS, Reader
from .runner import (CASE_SECONDS, MEMORY_HEADROOM, OUTCOMES, Pool, Result, address_space, mutant,
                     run_one, summarize)

__all__ = ["CASE_SECONDS", "MEMORY_HEADROOM", "OUTCOMES", "READERS", "Pool", "Reader", "Result",
           "address_space", "make_case", "mutant", "mutate", "run_one", "summarize"]
