"""The objects a tracker follows, with their labels and status, and the events of their transitions (ROS-free).

Per object and frame: TRACKED while presence >= presence_threshold, OCCLUDED below it, LOST on the lost_after-th
consecutive occluded frame. A LOST object keeps being tracked; it turns TRACKED again by itself (FOUND) or through
a detection / prompt (REACQUIRED). Each transition gives one Event; staying in a status gives none. State is a few
numbers per object (no per-frame history); time is the frames' own stamps in seconds, never the wall clock.

Objects made by a detection are also confirmed by the detector (issue 24): while detection arrays arrive (one
within the last lost_after tracked frames) and its class is used, such an object that no detection is assigned to
in unconfirmed_after arrays in a row is LOST ("not confirmed by the detector for N frames") whatever SAM 2's
presence says, and it leaves LOST only through a detection (REACQUIRED), never by presence alone (SAM 2 latches onto
distractors with a high presence). Hand-prompted objects keep the presence-only rule.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from sam2_ros.objects.detections import Detections
from sam2_ros.objects.matching import DetectionAction, DetectionPlan, Tracks, plan_detections
from sam2_ros.objects.motion import BoxMotion, predict_boxes
from sam2_ros.objects.types import Event, EventKind, ObjectOptions, Status


@dataclass(frozen=True)
class ObjectInfo:
    """What the registry knows about one object (a snapshot; replaced, never mutated)."""

    object_id: int
    label: str = ""
    label_score: float = 0.0  # score of the detection that created / re-acquired it; 0 = none
    status: Status = Status.TRACKED
    occluded_frames: int = 0  # consecutive frames with presence < presence_threshold
    lost_since: float | None = None  # stamp (s) of the frame it became LOST
    box: tuple[float, float, float, float] | None = None  # where it was last seen (frozen while LOST)
    detection_box: tuple[float, float, float, float] | None = None  # the last detection matched to it
    detection_age: int = 0  # frames since that detection; the box is forgotten after lost_after frames
    by_detector: bool = False  # made by a detection: confirmation and drift correction apply
    unconfirmed: int = 0  # detection arrays in a row without a detection assigned to it
    disagree: int = 0  # arrays in a row whose assigned detection disagreed with its mask box
    lost_by: str = ""  # "presence" | "detector": why it is LOST
    motion: BoxMotion | None = None  # constant-velocity filter on its confirmed detection boxes
    confirmed_box: tuple[float, float, float, float] | None = None  # the last detection assigned to it (kept)
    seen_at: float | None = None  # stamp (s) of that detection
    look: np.ndarray | None = None  # [C] unit appearance vector (objects.appearance) at a confirmation
    look_stamp: float = -np.inf  # stamp of that vector
    corrections: int = 0  # correction prompts it got


class ObjectRegistry:
    """Objects, their labels and statuses; matches detections to them and reports transitions as Events.

    Not thread-safe: one thread (the node's inference thread, which also owns the tracker) calls the methods; only
    `options` may be replaced from another thread (each call reads it once).
    """

    def __init__(self, options: ObjectOptions | None = None) -> None:
        self.options = options or ObjectOptions()
        self._objects: dict[int, ObjectInfo] = {}
        self.corrections = 0  # correction prompts so far (diagnostics)
        self._stamp = 0.0  # the last tracked frame's stamp
        self._since_array = 10**9  # tracked frames since the last detection array (huge: none yet)

    @property
    def options(self) -> ObjectOptions:
        """The rules in force; assign a new ObjectOptions to change them (takes effect on the next call)."""
        return self._options

    @options.setter
    def options(self, options: ObjectOptions) -> None:
        if not isinstance(options, ObjectOptions):
            raise ValueError(f"options must be an ObjectOptions, got {type(options).__name__}")
        self._options = options

    @property
    def ids(self) -> list[int]:
        """Object ids, in the order they were added."""
        return list(self._objects)

    def __len__(self) -> int:
        return len(self._objects)

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._objects

    def get(self, object_id: int) -> ObjectInfo:
        """The object's current record; ValueError for an unknown id."""
        return self._known(object_id)

    def columns(self, object_ids: Sequence[int]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(labels, label_scores [N] float32, status [N] uint8) of these objects, in this order, for publishing;
        an id the registry does not know gets ('', 0, TRACKED)."""
        infos = [self._objects.get(int(i), ObjectInfo(int(i))) for i in object_ids]
        return ([o.label for o in infos], np.array([o.label_score for o in infos], np.float32),
                np.array([int(o.status) for o in infos], np.uint8))

    # ------------------------------------------------------------------ detections
    def tracks(self, stamp: float | None = None, mask_boxes: np.ndarray | None = None) -> Tracks:
        """The objects as matching sees them at `stamp` (None: the last tracked frame's); mask_boxes [N, 4] in
        `ids` order replace the last tracked frame's boxes (a detection array naming an older frame)."""
        stamp = self._stamp if stamp is None else float(stamp)
        infos = list(self._objects.values())
        nan = (np.nan,) * 4
        n = len(infos)
        boxes = np.array([o.box or nan for o in infos], np.float64).reshape(-1, 4)
        if mask_boxes is not None:
            boxes = np.asarray(mask_boxes, np.float64).reshape(n, 4)
        recent = [o.motion if o.detection_box is not None else None for o in infos]
        last = np.array([o.confirmed_box or o.box or nan for o in infos], np.float64).reshape(-1, 4)
        seen = [o.seen_at if o.seen_at is not None else (o.lost_since if o.lost_since is not None else stamp)
                for o in infos]
        looks = None
        if any(o.look is not None for o in infos):
            size = next(o.look.shape[0] for o in infos if o.look is not None)
            looks = np.array([o.look if o.look is not None and o.look.shape[0] == size else np.full(size, np.nan)
                              for o in infos], np.float64)
        return Tracks([o.object_id for o in infos], [o.status for o in infos], [o.label for o in infos], boxes,
                      np.array([o.detection_box or nan for o in infos], np.float64).reshape(-1, 4),
                      predict_boxes(recent, stamp), last, stamp - np.array(seen, np.float64).reshape(-1),
                      np.array([o.by_detector for o in infos], bool).reshape(-1),
                      np.array([o.disagree for o in infos], np.int64).reshape(-1), looks)

    def plan_detections(self, detections: Detections, stamp: float | None = None,
                        mask_boxes: np.ndarray | None = None,
                        looks: Callable[[np.ndarray], np.ndarray] | None = None) -> DetectionPlan:
        """What this detection array asks for (matching.plan_detections on tracks(stamp, mask_boxes); looks: boxes
        -> appearance vectors, or None); nothing changes until the driver commits it."""
        return plan_detections([], np.zeros((0, 4)), [], detections, self._options,
                               tracks=self.tracks(stamp, mask_boxes), looks=looks)

    # ------------------------------------------------------------------ changes
    def add(self, object_id: int, stamp: float, label: str = "", score: float = 0.0, reason: str = "~/prompt",
            box: Sequence[float] | None = None) -> Event:
        """A new object, TRACKED from this frame on (after the tracker accepted its first prompt) -> ADDED."""
        object_id = int(object_id)
        if object_id < 1:
            raise ValueError(f"object_id must be >= 1, got {object_id}")
        if object_id in self._objects:
            raise ValueError(f"object {object_id} already exists")
        max_objects = self._options.max_objects
        if len(self._objects) >= max_objects:
            raise ValueError(f"already {len(self._objects)} objects (max_objects={max_objects})")
        self._objects[object_id] = ObjectInfo(object_id, str(label), float(score), box=_box(box))
        return Event(float(stamp), object_id, str(label), EventKind.ADDED, reason)

    def reacquire(self, object_id: int, stamp: float, box: Sequence[float] | None = None, score: float | None = None,
                  reason: str = "detection") -> Event | None:
        """The object was re-prompted (a detection's box, or a prompt): TRACKED again. REACQUIRED when it was LOST,
        None (no event) otherwise. A score replaces label_score."""
        info = self._known(object_id)
        was_lost = info.status == Status.LOST
        info = _with(info, status=Status.TRACKED, occluded_frames=0, lost_since=None, lost_by="", unconfirmed=0,
                       motion=None if was_lost else info.motion, disagree=0,
                       label_score=info.label_score if score is None else float(score),
                       box=_box(box) if box is not None else info.box)
        self._objects[info.object_id] = info
        return Event(float(stamp), info.object_id, info.label, EventKind.REACQUIRED, reason) if was_lost else None

    def apply_action(self, action: DetectionAction, stamp: float) -> Event | None:
        """Commit a new or re-acquired object of a plan once the tracker took its box -> ADDED, or REACQUIRED when it
        was LOST (it keeps its label, or takes the detection's when it has none; the score is updated)."""
        if action.object_id not in self._objects:
            event = self.add(action.object_id, stamp, action.label, action.score, action.reason, action.box)
            self._objects[action.object_id] = _with(self._objects[action.object_id], by_detector=True)
        else:
            if not self._objects[action.object_id].label:
                self.set_label(action.object_id, action.label)
            event = self.reacquire(action.object_id, stamp, action.box, action.score, action.reason)
        self.confirm(action, stamp)
        return event

    def confirm(self, action: DetectionAction, stamp: float | None = None, look: np.ndarray | None = None) -> None:
        """Remember the box of the detection assigned to this object: matching uses it for lost_after frames besides
        the mask's box. With the array's stamp, also the confirmation (motion filter, unconfirmed and disagreement
        counts) and, when given, a fresh appearance vector [C]. No prompt, no event."""
        info = self._known(action.object_id)
        box = _box(action.box)
        changes: dict = dict(detection_box=box, detection_age=0)
        if stamp is not None and box is not None:
            stamp = float(stamp)
            changes.update(motion=BoxMotion.start(box, stamp) if info.motion is None else info.motion.update(box, stamp),
                           unconfirmed=0, confirmed_box=box, seen_at=max(stamp, info.seen_at or stamp),
                           disagree=info.disagree + 1 if action.agreement < self._options.correction_iou else 0)
            if look is not None:
                changes.update(look=_blend(info.look, look), look_stamp=stamp)
        self._objects[info.object_id] = _with(info, **changes)

    def corrected(self, action: DetectionAction, stamp: float, box: Sequence[float] | None = None) -> None:
        """The tracker took a correction prompt (plan.corrections) with the detection's box; `box` is the object's
        new mask box on that frame. Counted in `corrections`; no event (no status changes)."""
        self.confirm(action, stamp)
        info = self._known(action.object_id)
        self._objects[info.object_id] = _with(info, disagree=0, corrections=info.corrections + 1,
                                                box=_box(box) if box is not None else info.box)
        self.corrections += 1

    def commit(self, plan: DetectionPlan, stamp: float, looks: dict[int, np.ndarray] | None = None) -> list[Event]:
        """After the driver's prompts: confirm the assigned objects of plan.matched (corrections, new and
        re-acquired ones were confirmed when the tracker took them) and count one unconfirmed array for each other
        detector's object whose class is used -> LOST events ("not confirmed by the detector for N frames").
        looks: fresh appearance vectors by object id."""
        stamp = float(stamp)
        looks = looks or {}
        for action in plan.matched:
            if action.object_id in self._objects:
                self.confirm(action, stamp, looks.get(action.object_id))
        self._since_array = 0
        assigned = {a.object_id for a in plan.matched + plan.corrections + plan.new + plan.reacquired}
        options = self._options
        events = []
        for info in list(self._objects.values()):
            if info.object_id in assigned or not info.by_detector or not options.wants(info.label):
                continue
            count = info.unconfirmed + 1
            if info.status != Status.LOST and count >= options.unconfirmed_after:
                info = _with(info, unconfirmed=count, status=Status.LOST, lost_by="detector", lost_since=stamp)
                events.append(Event(stamp, info.object_id, info.label, EventKind.LOST,
                                    f"not confirmed by the detector for {count} frames"))
            else:
                info = _with(info, unconfirmed=count)
            self._objects[info.object_id] = info
        return events

    def confirming(self, info: ObjectInfo) -> bool:
        """Whether the detector confirms this object now: made by a detection, its class used, and a detection
        array within the last lost_after tracked frames."""
        options = self._options
        return info.by_detector and options.wants(info.label) and self._since_array <= options.lost_after

    def set_label(self, object_id: int, label: str, score: float = 0.0) -> None:
        """Give an object a class name (e.g. from Prompt.label); the score is that of its source (0 = none)."""
        info = self._known(object_id)
        self._objects[info.object_id] = _with(info, label=str(label), label_score=float(score))

    def prompted(self, object_id: int, stamp: float, label: str = "", source: str = "~/prompt") -> Event | None:
        """Record a prompt the tracker accepted: ADDED for a new id, REACQUIRED for a LOST object, else no event.
        A non-empty label replaces the object's label (and zeroes its score)."""
        if object_id not in self._objects:
            return self.add(object_id, stamp, label, 0.0, source)
        if label:
            self.set_label(object_id, label)
        return self.reacquire(object_id, stamp, reason=source)

    def remove(self, object_id: int, stamp: float, reason: str = "~/remove_object") -> Event:
        """Forget an object (the caller removes it from the tracker) -> REMOVED."""
        info = self._known(object_id)
        del self._objects[info.object_id]
        return Event(float(stamp), info.object_id, info.label, EventKind.REMOVED, reason)

    def reset(self, stamp: float, reason: str = "~/reset") -> list[Event]:
        """Forget every object -> one REMOVED each."""
        return [self.remove(object_id, stamp, reason) for object_id in list(self._objects)]

    def expire(self, stamp: float) -> list[Event]:
        """Remove the objects LOST for remove_lost_after seconds or more by this stamp -> REMOVED each; call it
        before tracking the frame and remove the same ids from the tracker (nothing when remove_lost_after is 0)."""
        limit = self._options.remove_lost_after
        if limit <= 0:
            return []
        events = []
        for info in list(self._objects.values()):
            if info.status != Status.LOST or info.lost_since is None:
                continue
            elapsed = float(stamp) - info.lost_since
            if elapsed < 0:  # the stamps went back (a replayed bag): count from here
                self._objects[info.object_id] = _with(info, lost_since=float(stamp))
            elif elapsed >= limit:
                events.append(self.remove(info.object_id, stamp, f"lost for {elapsed:.1f} s"))
        return events

    def update(self, stamp: float, object_ids: Sequence[int], presence: np.ndarray, boxes: np.ndarray) -> list[Event]:
        """One tracked frame: presence [N] and mask boxes [N, 4] (NaN row = empty mask) of object_ids -> LOST /
        FOUND events. Ids the registry does not know are ignored; known objects not in the frame stay as they are."""
        presence = np.asarray(presence, np.float64).reshape(-1)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if presence.shape[0] != len(object_ids) or boxes.shape[0] != len(object_ids):
            raise ValueError(f"{len(object_ids)} objects but {presence.shape[0]} presence values and "
                             f"{boxes.shape[0]} boxes")
        options = self._options  # read once: another thread may replace it
        visible = presence >= options.presence_threshold  # [N]
        has_box = np.isfinite(boxes).all(axis=1)  # [N]
        lost_after = options.lost_after
        self._stamp = float(stamp)
        self._since_array = min(self._since_array + 1, 10**9)
        events = []
        for k, object_id in enumerate(object_ids):
            info = self._objects.get(int(object_id))
            if info is None:
                continue
            lost_by = info.lost_by
            if visible[k] and info.status == Status.LOST and self.confirming(info):
                status, occluded = Status.LOST, info.occluded_frames  # only a detection brings it back
            elif visible[k]:
                status, occluded, lost_by = Status.TRACKED, 0, ""
                if info.status == Status.LOST:
                    events.append(Event(float(stamp), info.object_id, info.label, EventKind.FOUND,
                                        f"found after {info.occluded_frames} frames"))
            else:
                occluded = info.occluded_frames + 1
                status = Status.LOST if info.status == Status.LOST or occluded >= lost_after else Status.OCCLUDED
                if status == Status.LOST and info.status != Status.LOST:
                    lost_by = "presence"
                    events.append(Event(float(stamp), info.object_id, info.label, EventKind.LOST,
                                        f"lost for {occluded} frames"))
            if status != Status.LOST:
                lost_since = None
            else:  # since the frame it became LOST
                lost_since = info.lost_since if info.status == Status.LOST else float(stamp)
            box = tuple(boxes[k].tolist()) if has_box[k] and status != Status.LOST else info.box
            age = info.detection_age + 1
            self._objects[info.object_id] = _with(
                info, status=status, occluded_frames=occluded, lost_since=lost_since, box=box, lost_by=lost_by,
                detection_box=info.detection_box if age <= lost_after else None, detection_age=min(age, lost_after + 1))
        return events

    # ------------------------------------------------------------------ internals
    def _known(self, object_id: int) -> ObjectInfo:
        info = self._objects.get(int(object_id))
        if info is None:
            known = ", ".join(map(str, self._objects)) or "none"
            raise ValueError(f"unknown object id {object_id} (known: {known})")
        return info


def _with(info: ObjectInfo, **changes: object) -> ObjectInfo:
    """dataclasses.replace for ObjectInfo, without its per-call field introspection (the registry does this ~50 times
    per frame for 16 objects; replace took 44 % of the rules' time)."""
    return ObjectInfo(**{**info.__dict__, **changes})


def _blend(old: np.ndarray | None, new: np.ndarray) -> np.ndarray:
    """A unit appearance vector moved towards a new unit vector (an exponential average over confirmations)."""
    new = np.asarray(new, np.float64).reshape(-1)
    if old is None or old.shape != new.shape or not np.isfinite(old).all():
        return new
    mixed = 0.7 * old + 0.3 * new
    norm = float(np.linalg.norm(mixed))
    return mixed / norm if norm > 0 else new


def _box(box: Sequence[float] | None) -> tuple[float, float, float, float] | None:
    if box is None:
        return None
    values = tuple(float(v) for v in np.asarray(box, np.float64).reshape(4))
    return values if all(np.isfinite(values)) else None
