"""Box geometry for matching detections to tracked objects, vectorised over all boxes of a frame.

Boxes are (x_min, y_min, x_max, y_max) in source-image pixels with exclusive maxima (a mask covering columns 10..19
has x_min 10, x_max 20), the convention of SyntheticFrame.box and of the tracker's box prompts.
"""
from __future__ import annotations

import numpy as np


def rotated_to_aabb(cx: np.ndarray, cy: np.ndarray, size_x: np.ndarray, size_y: np.ndarray,
                    theta: np.ndarray) -> np.ndarray:
    """Axis-aligned bounds [M, 4] of (possibly rotated) boxes given as vision_msgs BoundingBox2D numbers: centre,
    size along the box's own axes and theta (radians, counter-clockwise). theta = 0 gives the box itself."""
    cx, cy, sx, sy, th = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in (cx, cy, size_x, size_y, theta)))
    c, s = np.abs(np.cos(th)), np.abs(np.sin(th))
    half_w = 0.5 * (sx * c + sy * s)  # [M] half extents of the rotated rectangle's bounds
    half_h = 0.5 * (sx * s + sy * c)
    return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=-1).reshape(-1, 4)


def rotated_size_for_bounds(width: float, height: float, theta: float) -> tuple[float, float] | None:
    """(size_x, size_y) of the box rotated by theta whose axis-aligned bounds are width x height (the inverse of
    rotated_to_aabb); None when no such box exists (theta near 45 degrees, or too elongated bounds)."""
    c, s = abs(np.cos(theta)), abs(np.sin(theta))
    det = c * c - s * s
    if abs(det) < 1e-6:
        return None
    size_x, size_y = (c * width - s * height) / det, (c * height - s * width) / det
    return (float(size_x), float(size_y)) if size_x > 0 and size_y > 0 else None


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix [N, M] of boxes a [N, 4] and b [M, 4]; 0 where a box has no area."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])  # [N, M]
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0.0, None) * np.clip(ih, 0.0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0.0, None) * np.clip(a[:, 3] - a[:, 1], 0.0, None)  # [N]
    area_b = np.clip(b[:, 2] - b[:, 0], 0.0, None) * np.clip(b[:, 3] - b[:, 1], 0.0, None)  # [M]
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight boxes [N, 4] (float64) of masks [N, H, W] bool; a row of NaN for an empty mask (no box)."""
    masks = np.asarray(masks, bool)
    n = masks.shape[0]
    boxes = np.full((n, 4), np.nan)
    if n == 0:
        return boxes
    cols = masks.any(axis=1)  # [N, W]
    rows = masks.any(axis=2)  # [N, H]
    present = cols.any(axis=1)  # [N]
    width, height = cols.shape[1], rows.shape[1]
    boxes[present, 0] = cols[present].argmax(axis=1)
    boxes[present, 2] = width - cols[present, ::-1].argmax(axis=1)
    boxes[present, 1] = rows[present].argmax(axis=1)
    boxes[present, 3] = height - rows[present, ::-1].argmax(axis=1)
    return boxes
