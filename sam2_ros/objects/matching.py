"""Which detections become new objects, which re-acquire lost ones, and which only confirm tracked ones.

Rules (issue 14): detections that pass detection_min_score and detection_classes are matched to the objects by box
IoU, one-to-one, best IoU first, a pair only when IoU >= detection_match_iou. Matched to a LOST object: re-acquire
it. Matched to a TRACKED or OCCLUDED object: nothing (no re-prompting on every frame). Unmatched: a new object with
the lowest free id (>= 1), highest scores first, while fewer than max_objects exist.

An object's IoU with a detection is the better of two: with the box of its mask (where the tracker sees it) and with
the box of the last detection matched to it (where the detector saw it, if recently). The second keeps a detector's
object from being created again and again when the tracker's mask of it is poor (a mask grown over a neighbour, or
on the wrong shape): with the micro model, mask boxes alone made up to 13 duplicate objects in 40 frames, this rule
none (bench/objects_quality.py, seeds 0-5). Matching ignores class: a detector flickering between two classes on one
object must not create a second object.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from sam2_ros.objects.boxes import box_iou
from sam2_ros.objects.detections import Detections
from sam2_ros.objects.options import ObjectOptions, Status


@dataclass(frozen=True)
class DetectionAction:
    """A detection that prompts the tracker: object_id gets `box` (a new object, or a LOST one re-acquired)."""

    detection: int  # position in the detector's sequence (Detections.index)
    object_id: int
    box: np.ndarray  # [4] x_min, y_min, x_max, y_max, inside the image
    label: str
    score: float

    @property
    def reason(self) -> str:
        """The event's reason text, e.g. "detection cup 0.91"."""
        return f"detection {self.label or '?'} {self.score:.2f}"


@dataclass(frozen=True)
class DetectionPlan:
    """What one frame's detections ask for; computing it changes nothing (see ObjectRegistry.plan_detections)."""

    new: tuple[DetectionAction, ...]  # create these objects (in order)
    reacquired: tuple[DetectionAction, ...]  # re-prompt these LOST objects
    matched: tuple[DetectionAction, ...]  # confirm a TRACKED / OCCLUDED object: no prompt, its detection box is kept
    filtered: tuple[int, ...]  # detections refused by detection_classes or detection_min_score
    over_limit: tuple[int, ...]  # detections that would be new objects beyond max_objects
    skipped: tuple[tuple[int, str], ...]  # malformed detections (position, reason), from parse_detections

    @property
    def limit_reached(self) -> bool:
        """max_objects kept at least one detection from becoming an object."""
        return bool(self.over_limit)


def greedy_match(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """One-to-one pairs (row, column) of an IoU matrix [N, M], best IoU first, each >= threshold (> 0); ties go to
    the lower row, then the lower column."""
    flat = iou.ravel()
    candidates = np.flatnonzero((flat >= threshold) & (flat > 0))
    order = candidates[np.argsort(-flat[candidates], kind="stable")]
    rows_used = np.zeros(iou.shape[0], bool)
    cols_used = np.zeros(iou.shape[1], bool)
    pairs = []
    for k in order.tolist():
        r, c = divmod(k, iou.shape[1])
        if not rows_used[r] and not cols_used[c]:
            rows_used[r] = cols_used[c] = True
            pairs.append((r, c))
    return pairs


def lowest_free_ids(used: Iterable[int], count: int) -> list[int]:
    """The `count` smallest ids >= 1 not in `used`."""
    taken = set(used)
    out, candidate = [], 1
    while len(out) < count:
        if candidate not in taken:
            out.append(candidate)
        candidate += 1
    return out


def plan_detections(object_ids: Sequence[int], boxes: np.ndarray, status: Sequence[int], detections: Detections,
                    options: ObjectOptions, detection_boxes: np.ndarray | None = None) -> DetectionPlan:
    """Decide per detection: new object / re-acquire a LOST one / nothing.

    object_ids [N] with their mask boxes [N, 4], the boxes of the detections last matched to them [N, 4] (optional;
    a NaN row: no box, that IoU counts 0) and status [N]; detections as parsed for this frame.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    wanted = np.array([options.wants(c) for c in detections.class_ids], bool).reshape(-1)
    wanted &= detections.scores >= options.detection_min_score
    candidates = np.flatnonzero(wanted)  # [K'] rows of `detections`
    iou = box_iou(boxes, detections.boxes[candidates])  # [N, K'], 0 for NaN rows
    if detection_boxes is not None:
        iou = np.maximum(iou, box_iou(np.asarray(detection_boxes, np.float64).reshape(-1, 4),
                                      detections.boxes[candidates]))
    pairs = greedy_match(iou, options.detection_match_iou)
    reacquired, matched = [], []
    taken = np.zeros(len(candidates), bool)
    for r, c in pairs:
        det = int(candidates[c])
        taken[c] = True
        action = _action(detections, det, int(object_ids[r]))
        (reacquired if status[r] == Status.LOST else matched).append(action)
    free = candidates[~taken]
    free = free[np.argsort(-detections.scores[free], kind="stable")]  # best scores get the last places
    room = max(0, options.max_objects - len(object_ids))
    ids = lowest_free_ids(object_ids, min(room, len(free)))
    new = tuple(_action(detections, int(det), object_id) for det, object_id in zip(free, ids))
    return DetectionPlan(
        new=new, reacquired=tuple(reacquired), matched=tuple(sorted(matched, key=lambda a: a.detection)),
        filtered=tuple(int(i) for i in detections.index[~wanted]),
        over_limit=tuple(sorted(int(detections.index[d]) for d in free[len(ids):])),
        skipped=detections.skipped)


def _action(detections: Detections, row: int, object_id: int) -> DetectionAction:
    return DetectionAction(int(detections.index[row]), object_id, detections.boxes[row].copy(),
                           detections.class_ids[row], float(detections.scores[row]))
