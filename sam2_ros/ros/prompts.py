"""Prompts from any source (Prompt message, clicks, RViz points) -> one checked form the tracker accepts."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sam2_ros.ros.conversions import ImageError, prompt_mask_to_bool

MAX_OBJECT_ID = 65535  # label images are at most 16-bit


class PromptError(ValueError):
    """A prompt that is refused; the text is the log line / service message."""


@dataclass
class PromptSpec:
    """A prompt before it is checked against its frame: pixel points/labels, optional box and mask message."""

    object_id: int
    points: np.ndarray          # [N, 2] float64 pixels x, y
    labels: np.ndarray          # [N] int
    box: np.ndarray | None      # [4] x_min, y_min, x_max, y_max or None
    mask_msg: object = None     # sensor_msgs/Image or None
    stamp: int = 0              # ns of the image it was drawn on; 0 = newest
    replace: bool = False
    source: str = "prompt"


def stamp_ns(stamp) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def from_prompt_msg(msg, source: str = "prompt") -> PromptSpec:
    """sam2_ros/Prompt -> PromptSpec (no checks yet; they need the frame)."""
    points = np.array([[p.x, p.y] for p in msg.points], dtype=np.float64).reshape(-1, 2)
    labels = np.array(list(msg.labels), dtype=np.int64)
    box = np.array(list(msg.box), dtype=np.float64) if msg.has_box else None
    has_mask = msg.mask.height > 0 or msg.mask.width > 0 or len(msg.mask.data) > 0
    return PromptSpec(int(msg.object_id), points, labels, box, msg.mask if has_mask else None,
                      stamp_ns(msg.header.stamp), bool(msg.replace), source)


def from_click(object_id: int, x: float, y: float, positive: bool, stamp: int, source: str) -> PromptSpec:
    """One pixel click -> a one-point prompt that adds to the object's earlier points."""
    return PromptSpec(object_id, np.array([[x, y]], dtype=np.float64), np.array([1 if positive else 0]), None, None,
                      stamp, False, source)


@dataclass
class CheckedPrompt:
    """Arguments for tracker.add_prompt, all checked."""

    object_id: int
    points: np.ndarray | None   # [N, 2] float32
    labels: np.ndarray | None   # [N] int32
    box: np.ndarray | None      # [4] float32
    mask: np.ndarray | None     # [H, W] bool
    replace: bool


def check_prompt(spec: PromptSpec, height: int, width: int, known_ids: set[int], max_objects: int) -> CheckedPrompt:
    """Raise PromptError unless the prompt fits an HxW frame and the object budget."""
    if not 1 <= spec.object_id <= MAX_OBJECT_ID:
        raise PromptError(f"object_id must be in 1..{MAX_OBJECT_ID}, got {spec.object_id}")
    if spec.object_id not in known_ids and len(known_ids) >= max_objects:
        raise PromptError(f"already tracking max_objects={max_objects} objects; remove one before adding "
                          f"object {spec.object_id}")
    n = len(spec.points)
    if len(spec.labels) != n:
        raise PromptError(f"{n} point(s) but {len(spec.labels)} label(s): give one label per point")
    if n and not np.isfinite(spec.points).all():
        raise PromptError("points contain NaN or infinity")
    if n and not set(int(v) for v in spec.labels) <= {0, 1}:
        raise PromptError(f"labels must be 1 (foreground) or 0 (background), got {sorted(set(spec.labels.tolist()))}")
    if n and ((spec.points[:, 0] < 0) | (spec.points[:, 0] > width) |
              (spec.points[:, 1] < 0) | (spec.points[:, 1] > height)).any():
        bad = spec.points[(spec.points[:, 0] < 0) | (spec.points[:, 0] > width) | (spec.points[:, 1] < 0) |
                          (spec.points[:, 1] > height)][0]
        raise PromptError(f"point ({bad[0]:g}, {bad[1]:g}) is outside the {width}x{height} image")
    box = spec.box
    if box is not None:
        if not np.isfinite(box).all():
            raise PromptError("box contains NaN or infinity")
        x0, y0, x1, y1 = box
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise PromptError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) must satisfy 0 <= x_min < x_max <= {width} "
                              f"and 0 <= y_min < y_max <= {height}")
    mask = None
    if spec.mask_msg is not None:
        try:
            mask = prompt_mask_to_bool(spec.mask_msg, height, width)
        except ImageError as err:
            raise PromptError(f"mask: {err}") from err
    if n == 0 and box is None and mask is None:
        raise PromptError("the prompt has no points, no box and no mask")
    return CheckedPrompt(spec.object_id, spec.points.astype(np.float32) if n else None,
                         spec.labels.astype(np.int32) if n else None,
                         box.astype(np.float32) if box is not None else None, mask, spec.replace)
