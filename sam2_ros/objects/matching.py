"""Which detections become new objects, which re-acquire lost ones, which confirm tracked ones, and which tracked
objects get re-prompted because their mask left their detection.

Rules (issues 14 and 24), per detection array, over the detections that pass detection_min_score and
detection_classes:
1. Assignment to the TRACKED / OCCLUDED objects, one-to-one, maximising the total affinity (objects.assignment,
   Hungarian): affinity = 0.5 * IoU(mask box, detection) + 0.5 * IoU(expected box, detection) + LABEL_BONUS when the
   classes agree, where the expected box is the object's motion-predicted box (objects.motion, from its confirmed
   detections) or, without motion yet, its mask box. A pair is allowed when any of IoU(mask box), IoU(predicted box)
   and IoU(last detection box, kept lost_after frames) is >= detection_match_iou. The last detection box keeps a
   detector's object from being created again and again when the tracker's mask of it is poor (issue 14: with the
   micro model, mask boxes alone made up to 13 duplicates in 40 frames). Class does not gate: a detector flickering
   between two classes on one object must not create a second object.
2. Drift correction: a detector's object assigned a detection whose box disagrees with its mask box (IoU <
   correction_iou) for correction_after arrays in a row, or whose mask box sits on another object's assigned
   detection (IoU >= correction_iou and better than with its own), is re-prompted with its detection's box
   (plan.corrections). Agreeing objects are never re-prompted.
3. Re-acquisition before creation: each remaining detection is offered to the LOST objects of the same label (an
   unlabelled LOST object: any class, but only by IoU >= detection_match_iou with where it was), one-to-one by the
   re-acquisition score (objects.reacquire); a pair >= reacquire_min_score re-acquires that object.
4. The rest become new objects with the lowest free ids (>= 1), highest scores first, while fewer than max_objects.
"""
from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from sam2_ros.objects.assignment import assign
from sam2_ros.objects.boxes import box_iou
from sam2_ros.objects.detections import Detections
from sam2_ros.objects.types import ObjectOptions, Status
from sam2_ros.objects.reacquire import reacquire_scores

LABEL_BONUS = 0.05  # affinity added when an object's label is the detection's class (breaks near-ties, never gates)


@dataclass(frozen=True)
class DetectionAction:
    """A detection that prompts the tracker: object_id gets `box` (a new object, or a LOST one re-acquired)."""

    detection: int  # position in the detector's sequence (Detections.index)
    object_id: int
    box: np.ndarray  # [4] x_min, y_min, x_max, y_max, inside the image
    label: str
    score: float
    agreement: float = 1.0  # IoU of the object's mask box with this detection (matched / corrected objects)
    reacquire_score: float | None = None  # the re-acquisition score (re-acquired objects)
    why: str = ""  # why a tracked object is re-prompted (corrections)

    @property
    def reason(self) -> str:
        """The event's reason text, e.g. "detection cup 0.91", "detection cup 0.91, re-acquisition score 0.62"."""
        text = f"detection {self.label or '?'} {self.score:.2f}"
        return text if self.reacquire_score is None else f"{text}, re-acquisition score {self.reacquire_score:.2f}"


@dataclass(frozen=True)
class DetectionPlan:
    """What one frame's detections ask for; computing it changes nothing (see ObjectRegistry.plan_detections)."""

    new: tuple[DetectionAction, ...]  # create these objects (in order)
    reacquired: tuple[DetectionAction, ...]  # re-prompt these LOST objects
    matched: tuple[DetectionAction, ...]  # confirm a TRACKED / OCCLUDED object: no prompt, its detection box is kept
    filtered: tuple[int, ...]  # detections refused by detection_classes or detection_min_score
    over_limit: tuple[int, ...]  # detections that would be new objects beyond max_objects
    skipped: tuple[tuple[int, str], ...]  # malformed detections (position, reason), from parse_detections
    corrections: tuple[DetectionAction, ...] = ()  # re-prompt these tracked objects with their detection's box

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


@dataclass(frozen=True)
class Tracks:
    """What matching needs to know of N objects at the detection array's stamp (ObjectRegistry.tracks makes it)."""

    object_ids: list[int]  # [N]
    status: list[int]  # [N] Status
    labels: list[str]  # [N]
    mask_boxes: np.ndarray  # [N, 4] mask box on the array's frame; NaN row: no mask
    detection_boxes: np.ndarray  # [N, 4] last assigned detection box (kept lost_after frames); NaN row: none
    predicted: np.ndarray  # [N, 4] motion-predicted box at the array's stamp; NaN row: no motion yet
    last_boxes: np.ndarray  # [N, 4] last confirmed box (else last mask box), for re-acquiring LOST objects
    lost_for: np.ndarray  # [N] seconds since last seen (confirmed, else tracked)
    by_detector: np.ndarray  # [N] bool: made by a detection (confirmation and correction apply)
    disagree: np.ndarray  # [N] int: disagreeing arrays in a row so far
    looks: np.ndarray | None = None  # [N, C] unit appearance vectors, NaN row unknown; None: none


def plan_detections(object_ids: Sequence[int], boxes: np.ndarray, status: Sequence[int], detections: Detections,
                    options: ObjectOptions, detection_boxes: np.ndarray | None = None,
                    tracks: Tracks | None = None,
                    looks: Callable[[np.ndarray], np.ndarray] | None = None) -> DetectionPlan:
    """Decide per detection: confirm (and maybe correct) a tracked object / re-acquire a LOST one / new object.

    Either `tracks` (everything) or, as in issue 14, object_ids [N] with mask boxes [N, 4], status [N] and the last
    detection boxes [N, 4] (then no motion, labels or correction). looks: boxes [F, 4] -> [F, C] unit appearance
    vectors (NaN row unknown), called only for detections offered to LOST objects that have an appearance vector.
    """
    if tracks is None:
        n = len(object_ids)
        nan = np.full((n, 4), np.nan)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        det = nan if detection_boxes is None else np.asarray(detection_boxes, np.float64).reshape(-1, 4)
        tracks = Tracks(list(object_ids), list(status), [""] * n, boxes, det, nan, np.where(np.isnan(det), boxes, det),
                        np.zeros(n), np.zeros(n, bool), np.zeros(n, np.int64))
    wanted = np.array([options.wants(c) for c in detections.class_ids], bool).reshape(-1)
    wanted &= detections.scores >= options.detection_min_score
    candidates = np.flatnonzero(wanted)  # [K'] rows of `detections`
    det_boxes = detections.boxes[candidates]  # [K', 4]
    classes = [detections.class_ids[c] for c in candidates]
    lost = np.array([s == Status.LOST for s in tracks.status], bool).reshape(-1)
    active = np.flatnonzero(~lost)
    taken = np.zeros(len(candidates), bool)

    # 1. assignment to TRACKED / OCCLUDED objects
    iou_mask = box_iou(tracks.mask_boxes[active], det_boxes)  # [A, K']
    iou_pred = box_iou(tracks.predicted[active], det_boxes)
    iou_last = box_iou(tracks.detection_boxes[active], det_boxes)
    has_pred = np.isfinite(tracks.predicted[active]).all(axis=1)[:, None]  # [A, 1]
    labels = np.array(tracks.labels + [""], dtype=object)[:-1]  # [N] (object dtype: any label length)
    same = labels[active][:, None] == np.array(classes + [""], dtype=object)[None, :-1]  # [A, K']
    affinity = 0.5 * iou_mask + 0.5 * np.where(has_pred, iou_pred, iou_mask) + LABEL_BONUS * same
    allowed = np.maximum(np.maximum(iou_mask, iou_pred), iou_last) >= options.detection_match_iou
    allowed &= np.maximum(np.maximum(iou_mask, iou_pred), iou_last) > 0
    pairs = assign(affinity, allowed)
    matched, corrections = [], []
    owner = {c: a for a, c in pairs}  # detection column -> the active row it is assigned to
    for a, c in pairs:
        r = int(active[a])
        taken[c] = True
        agreement = float(iou_mask[a, c])
        action = _action(detections, int(candidates[c]), int(tracks.object_ids[r]), agreement=agreement)
        why = ""
        if tracks.by_detector[r]:
            others = [c2 for c2 in owner if c2 != c and iou_mask[a, c2] >= options.correction_iou
                      and iou_mask[a, c2] > agreement]
            if others:
                why = f"its mask sits on object {tracks.object_ids[int(active[owner[others[0]]])]}'s detection"
            elif agreement < options.correction_iou and tracks.disagree[r] + 1 >= options.correction_after:
                why = f"mask box IoU {agreement:.2f} with its detection for {int(tracks.disagree[r]) + 1} arrays"
        if why:
            corrections.append(replace(action, why=why))
        else:
            matched.append(action)

    # 3. re-acquisition of LOST objects by score
    reacquired = []
    free = np.flatnonzero(~taken)
    lost_rows = np.flatnonzero(lost)
    if len(free) and len(lost_rows):
        look = None
        if looks is not None and tracks.looks is not None and np.isfinite(tracks.looks[lost_rows]).any():
            look = tracks.looks[lost_rows] @ np.asarray(looks(det_boxes[free]), np.float64).T  # [L, F], NaN unknown
        score = reacquire_scores(tracks.last_boxes[lost_rows], tracks.lost_for[lost_rows], det_boxes[free], look)
        iou_where = box_iou(tracks.last_boxes[lost_rows], det_boxes[free])
        label_ok = np.array([[tracks.labels[r] == classes[f] if tracks.labels[r] else
                              bool(iou_where[i, j] >= options.detection_match_iou) for j, f in enumerate(free)]
                             for i, r in enumerate(lost_rows)], bool).reshape(score.shape)
        ok = label_ok & (score >= options.reacquire_min_score)
        for i, j in assign(score, ok):
            taken[free[j]] = True
            reacquired.append(_action(detections, int(candidates[free[j]]), int(tracks.object_ids[lost_rows[i]]),
                                      reacquire_score=float(score[i, j])))

    # 4. new objects
    free = candidates[~taken]
    free = free[np.argsort(-detections.scores[free], kind="stable")]  # best scores get the last places
    room = max(0, options.max_objects - len(tracks.object_ids))
    ids = lowest_free_ids(tracks.object_ids, min(room, len(free)))
    new = tuple(_action(detections, int(det), object_id) for det, object_id in zip(free, ids))
    by_detection = operator.attrgetter("detection")
    return DetectionPlan(
        new=new, reacquired=tuple(sorted(reacquired, key=by_detection)),
        matched=tuple(sorted(matched, key=by_detection)),
        filtered=tuple(int(i) for i in detections.index[~wanted]),
        over_limit=tuple(sorted(int(detections.index[d]) for d in free[len(ids):])),
        skipped=detections.skipped, corrections=tuple(sorted(corrections, key=by_detection)))


def _action(detections: Detections, row: int, object_id: int, **extra: object) -> DetectionAction:
    return DetectionAction(int(detections.index[row]), object_id, detections.boxes[row].copy(),
                           detections.class_ids[row], float(detections.scores[row]), **extra)
