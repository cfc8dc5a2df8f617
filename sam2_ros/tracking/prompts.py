"""Checking user prompts and turning them into model coordinates; every problem is a ValueError before any work."""
from __future__ import annotations

import numbers

import numpy as np
import torch
import torch.nn.functional as F

from sam2_ros.tracking.state import Prompt, Stamp


def check_object_id(object_id: object) -> int:
    """Object ids are positive ints (0 is the background in label images)."""
    if isinstance(object_id, bool) or not isinstance(object_id, numbers.Integral):
        raise ValueError(f"object_id must be an int, got {type(object_id).__name__}")
    if int(object_id) < 1:
        raise ValueError(f"object_id must be >= 1, got {int(object_id)}")
    return int(object_id)


def check_stamp(stamp: object) -> Stamp:
    """A stamp is a finite int or float."""
    if isinstance(stamp, bool) or not isinstance(stamp, numbers.Real):
        raise ValueError(f"stamp must be an int or float, got {type(stamp).__name__}")
    if isinstance(stamp, numbers.Integral):
        return int(stamp)
    if not np.isfinite(float(stamp)):
        raise ValueError(f"stamp must be finite, got {stamp}")
    return float(stamp)


def _as_float_array(value: object, name: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numeric: {err}") from err
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf: {array.tolist()}")
    return array


def _check_inside(xy: np.ndarray, size: tuple[int, int], name: str) -> None:
    """x in [0, W], y in [0, H] (pixel coordinates of the source image)."""
    height, width = size
    bad = (xy[:, 0] < 0) | (xy[:, 0] > width) | (xy[:, 1] < 0) | (xy[:, 1] > height)
    if bad.any():
        raise ValueError(f"{name} outside the {width}x{height} image: {xy[bad].tolist()}")


def _to_model(xy: np.ndarray, size: tuple[int, int], image_size: int) -> torch.Tensor:
    """Source pixels [N, 2] -> model-input pixels, with the same float32 operations as Meta's video predictor."""
    height, width = size
    coords = torch.tensor(xy, dtype=torch.float32)
    return coords / torch.tensor([width, height]) * image_size


def _mask_to_model(mask: object, size: tuple[int, int], image_size: int) -> torch.Tensor:
    """HxW mask (bool or numbers, non-zero = object) -> [1, 1, S, S] float 0/1 (antialiased resize, >= 0.5)."""
    array = np.asarray(mask)
    if array.shape != tuple(size):
        raise ValueError(f"mask must have the frame's shape {tuple(size)} (H, W), got {array.shape}")
    if array.dtype != np.bool_:
        if not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"mask must be bool or numeric, got dtype {array.dtype}")
        if not np.all(np.isfinite(array)):
            raise ValueError("mask contains NaN or inf")
        array = array != 0
    out = torch.from_numpy(np.ascontiguousarray(array))[None, None].float()  # [1, 1, H, W]
    if tuple(size) != (image_size, image_size):
        out = F.interpolate(out, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
        out = (out >= 0.5).float()
    return out


def parse_prompt(points: object, labels: object, box: object, mask: object, replace: bool,
                 size: tuple[int, int], image_size: int) -> Prompt:
    """Validate one prompt drawn on a frame of `size` (H, W) and express it on the S x S model input.

    A box always starts this frame's prompt afresh (SAM 2 expects box corners before any click), so it implies
    replace. A mask cannot be combined with points or a box.
    """
    if not isinstance(replace, (bool, np.bool_)):
        raise ValueError(f"replace must be a bool, got {type(replace).__name__}")
    if points is None and labels is None and box is None and mask is None:
        raise ValueError("empty prompt: give points (with labels), a box, or a mask")
    if (points is None) != (labels is None):
        raise ValueError("points and labels must be given together")
    if mask is not None:
        if points is not None or box is not None:
            raise ValueError("a mask prompt cannot be combined with points or a box")
        return Prompt(None, None, _mask_to_model(mask, size, image_size), bool(replace))

    parts_xy, parts_labels = [], []
    if box is not None:
        corners = _as_float_array(box, "box")
        if corners.shape != (4,):
            raise ValueError(f"box must be (x_min, y_min, x_max, y_max), got shape {corners.shape}")
        if not (corners[0] < corners[2] and corners[1] < corners[3]):
            raise ValueError(f"box needs x_min < x_max and y_min < y_max, got {corners.tolist()}")
        corners = corners.reshape(2, 2)
        _check_inside(corners, size, "box")
        parts_xy.append(corners)
        parts_labels.append(np.array([2, 3]))
        replace = True
    if points is not None:
        xy = _as_float_array(points, "points")
        if xy.ndim == 1 and xy.shape == (2,):
            xy = xy[None]
        if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] == 0:
            raise ValueError(f"points must be (N, 2) pixel x, y with N >= 1, got shape {xy.shape}")
        lab = _as_float_array(labels, "labels").reshape(-1) if np.ndim(labels) <= 1 else None
        if lab is None:
            raise ValueError(f"labels must be (N,), got shape {np.shape(labels)}")
        if lab.shape[0] != xy.shape[0]:
            raise ValueError(f"{xy.shape[0]} points but {lab.shape[0]} labels")
        if not np.all((lab == 0) | (lab == 1)):
            raise ValueError(f"labels must be 1 (foreground) or 0 (background), got {lab.tolist()}")
        _check_inside(xy, size, "points")
        parts_xy.append(xy)
        parts_labels.append(lab)
    xy = np.concatenate(parts_xy, axis=0).astype(np.float32)
    labels_t = torch.tensor(np.concatenate(parts_labels).astype(np.int32))
    return Prompt(_to_model(xy, size, image_size), labels_t, None, bool(replace))
