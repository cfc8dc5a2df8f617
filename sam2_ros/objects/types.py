"""Numbers and options of detector-driven tracking (ARCHITECTURE 3.4): statuses, event kinds, the tunable rules.

The status and event values equal the constants of sam2_ros/msg/ObjectMask (STATUS_*) and ObjectEvent; they are
repeated here as plain ints so the core needs no ROS message import (test_objects_status.py checks they agree).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from enum import IntEnum


class Status(IntEnum):
    """Per object and frame (ObjectMask.status)."""

    TRACKED = 0   # presence >= presence_threshold
    OCCLUDED = 1  # presence < presence_threshold on this frame
    LOST = 2      # occluded for lost_after consecutive frames; still tracked, may come back


class EventKind(IntEnum):
    """What happened to an object (ObjectEvent.event); one event per transition, never one per frame."""

    ADDED = 0       # created (by a detection or a prompt)
    LOST = 1        # occluded for lost_after consecutive frames
    FOUND = 2       # back from LOST by tracking alone
    REACQUIRED = 3  # back from LOST through a detection (or a prompt)
    REMOVED = 4     # removed on request, by a reset, or lost for remove_lost_after seconds


@dataclass(frozen=True)
class Event:
    """One status transition of one object, on the frame whose stamp (seconds) is given."""

    stamp: float
    object_id: int
    label: str
    kind: EventKind
    reason: str  # e.g. "detection cup 0.91", "~/prompt", "lost for 15 frames"


def _number(name: str, value: object, low: float, high: float, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if value < low or value > high or (low_open and value == low):
        raise ValueError(f"{name} must be in {'(' if low_open else '['}{low:g}, {high:g}], got {value:g}")
    return value


def _integer(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class ObjectOptions:
    """The rules of detector-driven tracking; the node builds one from its ROS parameters and replaces it as a whole
    when a dynamic parameter changes (`ObjectRegistry.options = new`), so every rule reads one consistent set.

    detection_classes: class_ids that create / re-acquire objects; empty = every class. Exact, case-sensitive
      comparison with the best hypothesis's class_id. Dynamic (the "segment the cup" switch). Default ().
    detection_min_score: the best hypothesis's score must be >= this. Dynamic. Default 0.5.
    detection_match_iou: a detection and an object match when the IoU of their boxes is >= this (0 < v <= 1).
      Dynamic. Default 0.3.
    presence_threshold: an object whose presence (probability of being visible) is below this is OCCLUDED on that
      frame. Dynamic. Default 0.5.
    lost_after: consecutive OCCLUDED frames after which an object is LOST (on the lost_after-th such frame).
      Dynamic. Default 15.
    remove_lost_after: seconds (of the frames' own stamps) an object may stay LOST before it is removed; 0 = never.
      Dynamic. Default 0.0.
    max_objects: most objects at once; detections beyond it create nothing (DetectionPlan.over_limit). The node's
      existing `max_objects` parameter (default 16).
    unconfirmed_after: detection arrays in a row (each naming one frame) in which no detection is assigned to an
      object made by a detector, while detections of its class are used, after which it is LOST even if SAM 2's
      presence is high (issue 24). Frames without a detection array do not count. Dynamic. Default 15.
    reacquire_min_score: a detection that matches no TRACKED / OCCLUDED object re-acquires the LOST object of its
      label with the best re-acquisition score (objects.reacquire) when that score is >= this; else it is a new
      object. 0 < v <= 1. Dynamic. Default 0.4.
    correction_iou: a detector's object whose mask box has IoU < this with its assigned detection disagrees with
      the detector on that frame. 0 < v <= 1. Dynamic. Default 0.5.
    correction_after: disagreeing detection arrays in a row after which the object is re-prompted with its
      detection's box (at once when its mask sits on another object's detection). Dynamic. Default 3.
    """

    detection_classes: tuple[str, ...] = ()
    detection_min_score: float = 0.5
    detection_match_iou: float = 0.3
    presence_threshold: float = 0.5
    lost_after: int = 15
    remove_lost_after: float = 0.0
    max_objects: int = 16
    unconfirmed_after: int = 15
    reacquire_min_score: float = 0.4
    correction_iou: float = 0.5
    correction_after: int = 3

    def __post_init__(self) -> None:
        classes = self.detection_classes
        if isinstance(classes, str) or not all(isinstance(c, str) for c in classes):
            raise ValueError(f"detection_classes must be a list of strings, got {classes!r}")
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, "detection_classes", tuple(classes))
        set_(self, "detection_min_score", _number("detection_min_score", self.detection_min_score, 0.0, 1.0))
        set_(self, "detection_match_iou",
             _number("detection_match_iou", self.detection_match_iou, 0.0, 1.0, low_open=True))
        set_(self, "presence_threshold", _number("presence_threshold", self.presence_threshold, 0.0, 1.0))
        set_(self, "lost_after", _integer("lost_after", self.lost_after, 1))
        set_(self, "remove_lost_after", _number("remove_lost_after", self.remove_lost_after, 0.0, math.inf))
        set_(self, "max_objects", _integer("max_objects", self.max_objects, 1))
        set_(self, "unconfirmed_after", _integer("unconfirmed_after", self.unconfirmed_after, 1))
        set_(self, "reacquire_min_score",
             _number("reacquire_min_score", self.reacquire_min_score, 0.0, 1.0, low_open=True))
        set_(self, "correction_iou", _number("correction_iou", self.correction_iou, 0.0, 1.0, low_open=True))
        set_(self, "correction_after", _integer("correction_after", self.correction_after, 1))

    def wants(self, class_id: str) -> bool:
        """Whether detections of this class are used (empty detection_classes = all)."""
        return not self.detection_classes or class_id in self.detection_classes
