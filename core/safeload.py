"""Loading weights files a user hands us without trusting their size fields.

`torch.load(weights_only=True)` and `np.load(allow_pickle=False)` never unpickle code, but they
inflate and allocate what the archive's directory declares: a damaged or hostile file could ask
for gigabytes. `torch_load` and `npz_load` check the zip directory first; the face model, the
expression classifier and the landmark tables load through them.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

MAX_WEIGHTS_BYTES = 2 << 30   # far above any shipped model (tens of MB)


def torch_load(path: str | os.PathLike, max_bytes: int = MAX_WEIGHTS_BYTES):
    """torch.load(path, map_location="cpu", weights_only=True) after checking that the file is a
    zip archive whose members declare at most `max_bytes` in all. Raises ValueError otherwise."""
    import torch

    p = Path(path)
    try:
        with zipfile.ZipFile(p) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile:
        raise ValueError(f"{p.name} is not a PyTorch weights archive (not a zip file)") from None
    declared = sum(i.file_size for i in infos)
    if declared > max_bytes:
        raise ValueError(f"{p.name} declares {declared} bytes of tensors, more than a weights file "
                         f"may hold ({max_bytes}); it is damaged")
    # torch.save stores records uncompressed, so none can be larger than the file itself: a
    # larger one is damage or a zip bomb (torch would inflate and parse all of it).
    on_disk = p.stat().st_size
    big = [i.filename for i in infos if i.file_size > on_disk]
    if big:
        raise ValueError(f"{p.name} is damaged: its record {big[0]} claims more bytes than the file holds")
    return torch.load(p, map_location="cpu", weights_only=True)


def npz_load(path: str | os.PathLike, max_member_bytes: int = 64 << 20, max_ratio: float = 100.0):
    """np.load(path, allow_pickle=False) of an .npz after checking that no member declares more
    than `max_member_bytes` uncompressed, nor (above 1 MB) inflates more than `max_ratio` times:
    arrays of real numbers compress a few times at most, a run of zeros a thousand times (a zip
    bomb). Raises ValueError otherwise."""
    import numpy as np

    p = Path(path)
    try:
        with zipfile.ZipFile(p) as zf:
            big = [i for i in zf.infolist() if i.file_size > max_member_bytes or
                   (i.file_size > 1 << 20 and i.file_size > max_ratio * max(i.compress_size, 1))]
    except zipfile.BadZipFile:
        raise ValueError(f"{p.name} is not an .npz archive (not a zip file)") from None
    if big:
        raise ValueError(f"{p.name} is damaged: its member {big[0].filename} claims "
                         f"{big[0].file_size} bytes from {big[0].compress_size} stored (a zip bomb?)")
    return np.load(p, allow_pickle=False)
