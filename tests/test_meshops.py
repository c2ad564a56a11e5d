"""Mesh helpers: speck cleaning of sampled SDFs, small-part removal, decimation budget."""
import numpy as np

from core.meshops import clean_sign_specks, decimate, largest_parts
from core.facemodel.mesh import marching_cubes


def _two_spheres(n: int = 48, hollow: bool = True) -> np.ndarray:
    ax = np.linspace(-1, 1, n)
    z, y, x = np.meshgrid(ax, ax, ax, indexing="ij")
    big = np.sqrt(x**2 + y**2 + z**2) - 0.6
    speck = np.sqrt((x - 0.85) ** 2 + (y - 0.85) ** 2 + (z - 0.85) ** 2) - 0.06
    pocket = 0.1 - np.sqrt(x**2 + y**2 + z**2)  # hollow core inside the big sphere
    return np.minimum(np.maximum(big, pocket) if hollow else big, speck).astype(np.float32)


def test_clean_sign_specks_leaves_one_solid():
    grid = _two_spheres()
    lo, hi = np.full(3, -1.0), np.full(3, 1.0)
    v0, f0 = marching_cubes(grid, lo, hi)
    clean = clean_sign_specks(grid)
    v1, f1 = marching_cubes(clean, lo, hi)
    assert len(f1) < len(f0)                            # speck and inner shell are gone
    assert np.all(np.linalg.norm(v1, axis=1) > 0.5)     # only the big sphere's surface is left
    assert np.allclose(np.abs(clean), np.abs(grid))     # distances kept, only signs change


def test_largest_parts_and_decimate_budget():
    grid = _two_spheres(hollow=False)
    v, f = marching_cubes(grid, np.full(3, -1.0), np.full(3, 1.0))
    v2, f2 = largest_parts(v, f)
    assert len(f2) < len(f) and f2.max() == len(v2) - 1
    v3, f3 = decimate(v2, f2, 1000)
    assert len(f3) <= 1100 and f3.max() < len(v3)
    r = np.linalg.norm(v3, axis=1)
    assert abs(r.mean() - 0.6) < 0.03                   # still the same sphere
