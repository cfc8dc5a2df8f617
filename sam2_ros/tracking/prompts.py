"""Checking user prompts and turning them into model coordinates; every problem is a ValueError before any work."""
from __future__ import annotations

import numbers
from dataclasses import dataclass

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


@dataclass(frozen=True)
class CheckedPrompt:
    """A valid prompt in the pixels of the frame it was drawn on (what add_prompt accepts, checked)."""

    points: np.ndarray | None  # [N, 2] float32 pixel x, y
    labels: np.ndarray | None  # [N] int32: 1 foreground, 0 background
    box: np.ndarray | None  # [4] float32 x_min, y_min, x_max, y_max
    mask: np.ndarray | None  # [H, W] bool


def check_combination(points: object, labels: object, box: object, mask: object) -> None:
    """Which parts of a prompt go together; only their presence counts, so a caller can refuse a prompt before it
    decodes any part (a mask goes alone; points come with labels)."""
    if points is None and labels is None and box is None and mask is None:
        raise ValueError("empty prompt: give points (with labels), a box, or a mask")
    if mask is not None and (points is not None or labels is not None or box is not None):
        raise ValueError("a mask prompt cannot be combined with points or a box")
    if (points is None) != (labels is None):
        raise ValueError("points and labels must be given together")


MAX_LISTED = 8  # values quoted in a refusal: a prompt of 1000 points must not make a 17 k-character message


def _listing(values: list) -> str:
    """At most MAX_LISTED values, comma separated, then how many more there are."""
    shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values[:MAX_LISTED])
    return shown + (f", ... ({len(values)} values)" if len(values) > MAX_LISTED else "")


def _as_float_array(value: object, name: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numeric, got {type(value).__name__} ({str(err)[:80]})") from None
    if not np.all(np.isfinite(array)):
        bad = np.flatnonzero(~np.isfinite(array.reshape(-1)))
        raise ValueError(f"NaN or infinity in {name}: {bad.size} of {array.size} value(s), the first at flat index "
                         f"{int(bad[0])} ({array.reshape(-1)[bad[0]]:g})")
    return array


def _check_inside(xy: np.ndarray, size: tuple[int, int], name: str) -> None:
    """x in [0, W], y in [0, H] (pixel coordinates of the source image)."""
    height, width = size
    bad = (xy[:, 0] < 0) | (xy[:, 0] > width) | (xy[:, 1] < 0) | (xy[:, 1] > height)
    if bad.any():
        x, y = xy[bad][0]
        raise ValueError(f"{name} ({x:g}, {y:g}) is outside the {width}x{height} image")


def _check_mask(mask: object, size: tuple[int, int]) -> np.ndarray:
    """HxW mask (bool or numbers, non-zero = object) of the frame's size -> [H, W] bool."""
    array = np.asarray(mask)
    height, width = size
    if array.ndim != 2:
        raise ValueError(f"mask must be an HxW array, got shape {array.shape}")
    if array.shape != (height, width):
        raise ValueError(f"mask is {array.shape[1]}x{array.shape[0]}, the image is {width}x{height}")
    if array.dtype == np.bool_:
        return array
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"mask must be bool or numeric, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError("NaN or infinity in mask")
    return array != 0


def check_prompt(points: object, labels: object, box: object, mask: object, size: tuple[int, int]) -> CheckedPrompt:
    """Validate one prompt drawn on a frame of `size` (H, W): points (N, 2) pixel x, y with labels (N,) 1 / 0,
    a box (4,), or an HxW mask. The one prompt check of the project: the node answers with these messages."""
    check_combination(points, labels, box, mask)
    if mask is not None:
        return CheckedPrompt(None, None, None, _check_mask(mask, size))
    corners = xy = lab = None
    if box is not None:
        corners = _as_float_array(box, "box")
        if corners.shape != (4,):
            raise ValueError(f"box must be (x_min, y_min, x_max, y_max), got shape {corners.shape}")
        if not (corners[0] < corners[2] and corners[1] < corners[3]):
            raise ValueError(f"box ({', '.join(f'{v:g}' for v in corners)}) needs x_min < x_max and y_min < y_max")
        _check_inside(corners.reshape(2, 2), size, "box corner")
    if points is not None:
        xy = _as_float_array(points, "points")
        if xy.shape == (2,):
            xy = xy[None]
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ValueError(f"points must be (N, 2) pixel x, y, got shape {xy.shape}")
        if np.ndim(labels) > 1:
            raise ValueError(f"labels must be (N,), got shape {np.shape(labels)}")
        lab = _as_float_array(labels, "labels").reshape(-1)
        if lab.shape[0] != xy.shape[0]:
            raise ValueError(f"{xy.shape[0]} point(s) but {lab.shape[0]} label(s): give one label per point")
        if xy.shape[0] == 0:
            raise ValueError("points must hold at least one point")
        if not np.all((lab == 0) | (lab == 1)):
            got = _listing(sorted(set(lab.tolist())))
            raise ValueError(f"labels must be 1 (foreground) or 0 (background), got {got}")
        _check_inside(xy, size, "point")
    return CheckedPrompt(None if xy is None else xy.astype(np.float32), None if lab is None else lab.astype(np.int32),
                         None if corners is None else corners.astype(np.float32), None)


def _to_model(xy: np.ndarray, size: tuple[int, int], image_size: int) -> torch.Tensor:
    """Source pixels [N, 2] -> model-input pixels, with the same float32 operations as Meta's video predictor."""
    height, width = size
    coords = torch.tensor(xy, dtype=torch.float32)
    return coords / torch.tensor([width, height]) * image_size


def _mask_to_model(mask: np.ndarray, image_size: int) -> torch.Tensor:
    """[H, W] bool -> [1, 1, S, S] float 0/1 (antialiased resize, >= 0.5)."""
    out = torch.from_numpy(np.ascontiguousarray(mask))[None, None].float()  # [1, 1, H, W]
    if tuple(mask.shape) != (image_size, image_size):
        out = F.interpolate(out, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
        out = (out >= 0.5).float()
    return out


def parse_prompt(points: object, labels: object, box: object, mask: object, replace: bool,
                 size: tuple[int, int], image_size: int) -> Prompt:
    """Validate one prompt drawn on a frame of `size` (H, W) (check_prompt) and express it on the S x S model input.

    A box always starts this frame's prompt afresh (SAM 2 expects box corners before any click), so it implies
    replace.
    """
    if not isinstance(replace, (bool, np.bool_)):
        raise ValueError(f"replace must be a bool, got {type(replace).__name__}")
    checked = check_prompt(points, labels, box, mask, size)
    if checked.mask is not None:
        return Prompt(None, None, _mask_to_model(checked.mask, image_size), bool(replace))
    parts_xy, parts_labels = [], []
    if checked.box is not None:
        parts_xy.append(checked.box.reshape(2, 2))
        parts_labels.append(np.array([2, 3], np.int32))
        replace = True
    if checked.points is not None:
        parts_xy.append(checked.points)
        parts_labels.append(checked.labels)
    xy = np.concatenate(parts_xy, axis=0)
    labels_t = torch.from_numpy(np.concatenate(parts_labels).astype(np.int32))
    return Prompt(_to_model(xy, size, image_size), labels_t, None, bool(replace))
