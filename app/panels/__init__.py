"""Dockable panels. Each observes the Avatar document and writes to it only through setters."""
