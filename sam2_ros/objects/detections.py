"""A detector's output for one frame, checked: each malformed detection is set aside with a reason, the rest become
axis-aligned boxes clipped to the image with the class and score of their best hypothesis.

The node turns each vision_msgs/Detection2D into a RawDetection (bbox.center.position.x/y, bbox.size_x/y,
bbox.center.theta, [(r.hypothesis.class_id, r.hypothesis.score) for r in results]) and calls parse_detections.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from sam2_ros.objects.boxes import rotated_to_aabb

MAX_BOX_SCALE = 4.0  # a box side longer than this many image sides is malformed, not a large object


class RawDetection(NamedTuple):
    """One detection as the detector gave it (vision_msgs 4.x BoundingBox2D numbers, pixels, radians CCW)."""

    cx: float
    cy: float
    size_x: float
    size_y: float
    theta: float
    hypotheses: Sequence[tuple[str, float]]  # (class_id, score) per ObjectHypothesisWithPose


@dataclass(frozen=True)
class Detections:
    """The usable detections of one frame (K of the M given) and the skipped ones with their reasons."""

    boxes: np.ndarray  # [K, 4] float64 x_min, y_min, x_max, y_max, clipped to the image (x_min < x_max, y_min < y_max)
    class_ids: tuple[str, ...]  # [K] class of the best hypothesis
    scores: np.ndarray  # [K] float64 score of the best hypothesis
    index: np.ndarray  # [K] int64 position of each in the given sequence
    skipped: tuple[tuple[int, str], ...]  # (position, reason) of each malformed detection

    def __len__(self) -> int:
        return len(self.class_ids)


def _best_hypothesis(hypotheses: object) -> tuple[str, float] | str:
    """(class_id, score) of the highest score (the first on ties), or the reason it cannot be read."""
    try:
        pairs = list(hypotheses)
    except TypeError:
        return "hypotheses are not a list"
    if not pairs:
        return "no hypotheses (empty results)"
    best: tuple[str, float] | None = None
    for item in pairs:
        try:
            class_id, score = item
            score = float(score)
        except (TypeError, ValueError):
            return f"unreadable hypothesis {item!r}"
        if not isinstance(class_id, str):
            return f"class_id must be a string, got {type(class_id).__name__}"
        if not math.isfinite(score):
            return f"score of {class_id!r} is not finite ({score})"
        if best is None or score > best[1]:
            best = (class_id, score)
    return best


def _numbers(detections: Sequence[RawDetection]) -> tuple[np.ndarray, list[str | None]]:
    """[M, 5] cx, cy, size_x, size_y, theta as float64 (NaN where unreadable) and a reason for unreadable rows."""
    reasons: list[str | None] = [None] * len(detections)
    try:
        return np.array([d[:5] for d in detections], np.float64).reshape(-1, 5), reasons
    except (TypeError, ValueError, IndexError):
        pass
    numbers = np.full((len(detections), 5), np.nan)
    for i, det in enumerate(detections):  # the slow path finds the rows that cannot be read
        try:
            numbers[i] = [float(det[k]) for k in range(5)]
        except (TypeError, ValueError, IndexError):
            reasons[i] = "unreadable box numbers"
    return numbers, reasons


def parse_detections(detections: Sequence[RawDetection], image_size: tuple[int, int]) -> Detections:
    """Check the detections of one frame of image_size (H, W); malformed ones (NaN/inf numbers, size <= 0, a side
    over MAX_BOX_SCALE image sides, no hypotheses, a box entirely outside the image) are skipped with a reason each."""
    height, width = image_size
    numbers, reasons = _numbers(detections)  # [M, 5]
    best: list[tuple[str, float]] = []
    for i, det in enumerate(detections):
        hyp = _best_hypothesis(det[5] if len(det) > 5 else ()) if reasons[i] is None else ("", 0.0)
        if isinstance(hyp, str):
            reasons[i], hyp = hyp, ("", 0.0)
        best.append(hyp)
    with np.errstate(invalid="ignore", over="ignore"):
        boxes = rotated_to_aabb(*numbers.T)  # [M, 4]
        clipped = np.clip(boxes, 0.0, [width, height, width, height])
        finite = np.isfinite(numbers)  # [M, 5]
        bad = ~finite.all(axis=1)
        bad |= (numbers[:, 2] <= 0) | (numbers[:, 3] <= 0)
        bad |= boxes[:, 2] - boxes[:, 0] > MAX_BOX_SCALE * width
        bad |= boxes[:, 3] - boxes[:, 1] > MAX_BOX_SCALE * height
        bad |= (clipped[:, 2] <= clipped[:, 0]) | (clipped[:, 3] <= clipped[:, 1])
    for i in np.flatnonzero(bad):  # the words for the (rare) malformed ones
        if reasons[i] is None:
            reasons[i] = _box_reason(numbers[i], boxes[i], width, height)
    keep = np.array([r is None for r in reasons], bool).reshape(-1)
    rows = np.flatnonzero(keep)
    return Detections(boxes=clipped[keep], class_ids=tuple(best[i][0] for i in rows),
                      scores=np.array([best[i][1] for i in rows], np.float64), index=rows.astype(np.int64),
                      skipped=tuple((i, r) for i, r in enumerate(reasons) if r is not None))


def _box_reason(numbers: np.ndarray, box: np.ndarray, width: int, height: int) -> str:
    """Why a detection's box numbers are unusable (the first problem found)."""
    cx, cy, sx, sy, th = numbers.tolist()
    if not (math.isfinite(cx) and math.isfinite(cy)):
        return f"centre is not finite ({cx}, {cy})"
    if not (math.isfinite(sx) and math.isfinite(sy)):
        return f"size is not finite ({sx} x {sy})"
    if not math.isfinite(th):
        return f"theta is not finite ({th})"
    if sx <= 0 or sy <= 0:
        return f"size must be > 0, got {sx:g} x {sy:g}"
    if box[2] - box[0] > MAX_BOX_SCALE * width or box[3] - box[1] > MAX_BOX_SCALE * height:
        return f"size {sx:g} x {sy:g} is absurd for a {width}x{height} image"
    return f"box ({', '.join(f'{v:g}' for v in box)}) lies outside the {width}x{height} image"
