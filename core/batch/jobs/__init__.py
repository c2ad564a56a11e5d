"""Batch adapters, one module per command (see core/batch/registry.py)."""
