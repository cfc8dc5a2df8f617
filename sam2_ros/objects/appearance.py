"""A cheap appearance cue for re-acquisition: SAM 2's image-encoder features (already computed for the frame) averaged
inside the central half of a box, as a unit vector; two boxes look alike when their vectors' cosine is high.

The encoder sees the frame squeezed to a square, so a box maps to the feature grid by scaling x and y separately.
"""
from __future__ import annotations

from typing import Any

import numpy as np

LOOK_EVERY_S = 0.25  # an object's appearance vector is refreshed at most this often (seconds of frame time)


def box_looks(features: Any, boxes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """[K, C] unit vectors of `features` ([1, C, h, w] or [C, h, w], torch or numpy) pooled over the central half of
    each box [K, 4] (source pixels of an image of image_size (H, W)); a NaN row for a box without area."""
    grid = features[0] if getattr(features, "ndim", 0) == 4 else features
    channels, h, w = (int(v) for v in grid.shape)
    height, width = image_size
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    out = np.full((boxes.shape[0], channels), np.nan)
    for k, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
        if not (x1 > x0 and y1 > y0):
            continue
        qx, qy = 0.25 * (x1 - x0), 0.25 * (y1 - y0)  # the central half: less background
        c0, c1 = _cells(x0 + qx, x1 - qx, w / width, w)
        r0, r1 = _cells(y0 + qy, y1 - qy, h / height, h)
        patch = grid[:, r0:r1, c0:c1]
        vec = np.asarray(patch.float().mean(dim=(1, 2)).cpu() if hasattr(patch, "float") and hasattr(patch, "cpu")
                         else np.mean(patch, axis=(1, 2)), np.float64)
        norm = float(np.linalg.norm(vec))
        if norm > 0 and np.isfinite(norm):
            out[k] = vec / norm
    return out


def _cells(lo: float, hi: float, scale: float, size: int) -> tuple[int, int]:
    """The grid cells [start, stop) covering source pixels lo..hi (at least one cell, inside the grid)."""
    start = int(np.clip(np.floor(lo * scale), 0, size - 1))
    stop = int(np.clip(np.ceil(hi * scale), start + 1, size))
    return start, stop
