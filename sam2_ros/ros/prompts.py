"""Prompts from any source (Prompt message, clicks, RViz points) -> the arguments of tracker.add_prompt.

Only what is the node's own is checked here (object ids that fit a label image, the object budget, decoding the mask
message); the prompt itself is checked by the tracker's validator (tracking/prompts.py), whose message the node
answers with.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sam2_ros.ros.conversions import ImageError, prompt_mask_to_bool
from sam2_ros.tracking.prompts import check_combination

MAX_OBJECT_ID = 65535  # label images are at most 16-bit
MAX_DESCRIBED = 8      # points written out in a prompt's log line / service message


class PromptError(ValueError):
    """A prompt that is refused; the text is the log line / service message."""


@dataclass
class PromptSpec:
    """A prompt before it is checked against its frame: pixel points/labels, optional box and mask message."""

    object_id: int
    points: np.ndarray          # [N, 2] float64 pixels x, y
    labels: np.ndarray          # [N] int
    box: np.ndarray | None      # [4] x_min, y_min, x_max, y_max or None
    mask_msg: object = None     # sensor_msgs/Image or None (an empty mask field)
    stamp: int = 0              # ns of the image it was drawn on; 0 = newest
    replace: bool = False
    source: str = "prompt"
    label: str = ""             # class name for the object ('' = keep its label)
    multimask: bool = False     # answer with SAM 2's candidate masks (Prompt.multimask)


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
                      stamp_ns(msg.header.stamp), bool(msg.replace), source, str(msg.label), bool(msg.multimask))


def from_click(object_id: int, x: float, y: float, positive: bool, stamp: int, source: str) -> PromptSpec:
    """One pixel click -> a one-point prompt that adds to the object's earlier points."""
    return PromptSpec(object_id, np.array([[x, y]], dtype=np.float64), np.array([1 if positive else 0]), None, None,
                      stamp, False, source)


@dataclass
class PromptArgs:
    """Arguments for tracker.add_prompt (the tracker validates them)."""

    object_id: int
    points: np.ndarray | None   # [N, 2] float64 pixels x, y
    labels: np.ndarray | None   # [N] int
    box: np.ndarray | None      # [4] x_min, y_min, x_max, y_max
    mask: np.ndarray | None     # [H, W] bool
    replace: bool

    def describe(self) -> str:
        """What the prompt holds, for the log line / service message."""
        what = []
        if self.points is not None:
            pairs = list(zip(self.points, self.labels))
            text = " ".join(f"({x:.1f}, {y:.1f}; {int(lab)})" for (x, y), lab in pairs[:MAX_DESCRIBED])
            if len(pairs) > MAX_DESCRIBED:  # a log line / service message of bounded length
                text += f" ... ({len(pairs)} points)"
            what.append("points " + text)
        if self.box is not None:
            what.append("box (" + ", ".join(f"{v:.1f}" for v in self.box) + ")")
        if self.mask is not None:
            what.append(f"mask of {int(self.mask.sum())} px")
        return ", ".join(what)


def prompt_args(spec: PromptSpec, known_ids: set[int], max_objects: int) -> PromptArgs:
    """Raise PromptError (or the validator's ValueError for parts that do not go together, before the mask is
    decoded) unless the prompt fits the node: object id, object budget, a readable mask message."""
    if not 1 <= spec.object_id <= MAX_OBJECT_ID:
        raise PromptError(f"object_id must be in 1..{MAX_OBJECT_ID}, got {spec.object_id}")
    if spec.object_id not in known_ids and len(known_ids) >= max_objects:
        raise PromptError(f"already tracking max_objects={max_objects} objects; remove one before adding "
                          f"object {spec.object_id}")
    clicked = len(spec.points) > 0 or len(spec.labels) > 0
    points, labels = (spec.points, spec.labels) if clicked else (None, None)
    check_combination(points, labels, spec.box, spec.mask_msg)
    mask = None
    if spec.mask_msg is not None:
        try:
            mask = prompt_mask_to_bool(spec.mask_msg)
        except ImageError as err:
            raise PromptError(f"mask: {err}") from err
    return PromptArgs(spec.object_id, points, labels, spec.box, mask, spec.replace)
