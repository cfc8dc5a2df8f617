"""TrackingSession: what happens to a frame, a prompt, a detection array, a removal or a reset — without ROS.

The session owns the StreamingTracker, the ObjectRegistry (labels, statuses, events) and the inference worker (one
thread, newest frame only, a bounded job queue, the short history of tracked frames that prompts and detections name
by header stamp). Its caller (the node, or a test) converts inputs into `receive` / `submit_*` calls and gets the
results back through `SessionOutputs`: what to publish for a tracked frame, the object events, warnings.

Rules that live here, once:
- a frame: a header stamp more than `time_jump_reset` s older than the last tracked frame's (a looping bag, a
  simulator reset) first forgets every object (REMOVED each); then expired LOST objects are removed, the frame is
  tracked and every object's status updated (objects/driver.track_frame);
- a prompt or detection array applies to the tracked frame its stamp names, else (with a note) to the newest; with no
  frame yet, or none since a reset, it is refused saying which;
- a prompt the registry refuses (max_objects) is taken back from the tracker, so the two never disagree;
- a reset forgets registry, tracker, frame history and the caller's per-frame state (`forgot`).
All `apply_*` / `track` methods run on the inference thread (or in a test's own thread, with the worker not started).
"""
from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from sam2_ros.objects import (AppliedDetections, Event, ObjectOptions, ObjectRegistry, RawDetection,
                              apply_detections, parse_detections, track_frame)
from sam2_ros.session.detection_log import DetectionLog
from sam2_ros.session.requests import PromptError, PromptRequest, prompt_args
from sam2_ros.session.worker import InferenceWorker, ReceivedFrame
from sam2_ros.tracking import EverythingResult, TrackResult, segment_everything


class SessionOutputs(Protocol):
    """What the session's caller does with results (the node publishes them; a test records them)."""

    def before_track(self, frame: ReceivedFrame) -> None:
        """Just before `frame` is tracked (the node pairs depth that came before it)."""

    def tracked(self, frame: ReceivedFrame, result: TrackResult, events: list[Event], inference_ms: float) -> None:
        """`frame` was tracked: its result and the events of its status transitions."""

    def publish(self, frame: ReceivedFrame, result: TrackResult, want_masks: bool = False) -> Any:
        """Publish a frame's result again (after a prompt changed it); returns the mask message when wanted."""

    def publish_events(self, events: Sequence[Event], frame: ReceivedFrame | None) -> None:
        """Object events that happened on `frame` (None: before any frame)."""

    def forgot(self) -> None:
        """Every object and frame was forgotten (a reset): drop per-frame state (depth pairing)."""

    def warn(self, kind: str, text: str, warning: bool = True) -> None:
        """A line for the log; `kind` groups repeats for throttling."""


@dataclass(frozen=True)
class SessionOptions:
    """The session's own settings (the object rules are ObjectOptions, on the registry)."""

    history: int = 8  # tracked frames a prompt / detection array may name by stamp (prompt_history)
    max_jobs: int = 100  # jobs that may wait for the inference thread (max_queued_jobs); more are refused "busy"
    time_jump_reset: float = 1.0  # s; a stamp jumping back further resets once (0 = never)


@dataclass
class PromptAnswer:
    """What a prompt did: the answer's text, the published masks, the prompted frame's result (with the candidates
    of a multimask prompt) and the object's label."""

    message: str
    masks: Any
    result: TrackResult
    frame: ReceivedFrame
    label: str
    ms: float  # time it took on the inference thread (checks, decoder, publishing)


class TrackingSession:
    """Tracker + object registry + inference worker, and the rules that connect them."""

    def __init__(self, tracker: Any, outputs: SessionOutputs, object_options: ObjectOptions | None = None,
                 options: SessionOptions | None = None) -> None:
        self.tracker = tracker
        self.outputs = outputs
        self.options = options or SessionOptions()
        self.registry = ObjectRegistry(object_options)
        self.worker = InferenceWorker(self.track, self.options.history,
                                      lambda text: outputs.warn("tracking failed", text), self.options.max_jobs)
        self._detection_log = DetectionLog()
        self._seq = itertools.count(1)
        self._last_stamp_ns = 0  # header stamp of the last tracked frame: time jumps

    # ---------------------------------------------------------------- lifetime and options (any thread)
    def start(self) -> None:
        self.worker.start()

    def stop(self, reason: str = "not handled: the session is stopping") -> None:
        """Stop the inference thread; waiting jobs are refused with `reason`."""
        self.worker.stop(reason)

    def set_options(self, options: SessionOptions, object_options: ObjectOptions | None = None) -> None:
        """New settings; the rules read them once per call (the history length is fixed at construction)."""
        self.options = options
        self.worker.max_jobs = options.max_jobs
        if object_options is not None:
            self.registry.options = object_options

    # ---------------------------------------------------------------- inputs (any thread)
    def receive(self, stamp_ns: int, header: Any, rgb: np.ndarray) -> ReceivedFrame:
        """A new image: numbered, and offered to the worker (replacing a frame still waiting)."""
        frame = ReceivedFrame(stamp_ns=int(stamp_ns), header=header, rgb=rgb, seq=next(self._seq))
        self.worker.submit_frame(frame)
        return frame

    def submit(self, run: Callable[[ReceivedFrame | None, bool], Any], stamp_ns: int = 0) -> Future:
        """Any job for the frame named by `stamp_ns` (0 = newest) on the inference thread."""
        return self.worker.submit(run, stamp_ns)

    def submit_prompt(self, request: PromptRequest) -> Future:
        """A prompt -> Future[PromptAnswer] (PromptError / ValueError when refused)."""
        return self.submit(lambda frame, found: self.apply_prompt(request, frame, found), request.stamp_ns)

    def submit_detections(self, raws: list[RawDetection], stamp_ns: int) -> Future:
        """A detection array of the frame `stamp_ns` -> Future[AppliedDetections]."""
        return self.submit(lambda frame, found: self.apply_detections(raws, stamp_ns, frame, found), stamp_ns)

    def newest(self) -> ReceivedFrame | None:
        """The newest tracked frame (None before the first)."""
        return self.worker.newest()

    # ---------------------------------------------------------------- rules (inference thread)
    def track(self, frame: ReceivedFrame) -> TrackResult:
        """One frame: time-jump check, expiry, tracking, statuses; the outputs get the result and the events."""
        self.check_time_jump(frame)
        self.outputs.before_track(frame)
        t0 = time.perf_counter()
        result, events = track_frame(self.tracker, self.registry, np.ascontiguousarray(frame.rgb),
                                     seq=frame.seq, time_s=frame.time_s)
        self.outputs.tracked(frame, result, events, (time.perf_counter() - t0) * 1e3)
        return result

    def check_time_jump(self, frame: ReceivedFrame) -> int:
        """Forget every object once when `frame`'s stamp is more than time_jump_reset s older than the last tracked
        frame's; zero stamps (no clock) and smaller reorderings change nothing. Returns the objects forgotten."""
        last, limit = self._last_stamp_ns, self.options.time_jump_reset
        if frame.stamp_ns == 0:
            return 0
        self._last_stamp_ns = frame.stamp_ns
        back = (last - frame.stamp_ns) * 1e-9
        if not (last and limit > 0 and back > limit):
            return 0
        count = self.forget(frame, f"time jump: stamps went back {back:.2f} s")
        self.outputs.warn("time jump", f"time jump: camera stamps went back {back:.2f} s (more than time_jump_reset "
                          f"{limit:g} s: a looping bag or a simulator reset); tracker reset, {count} object(s) "
                          "forgotten")
        return count

    def need_frame(self, frame: ReceivedFrame | None, what: str) -> ReceivedFrame:
        """`frame`, or PromptError saying whether no image ever arrived or none since the last reset."""
        if frame is not None:
            return frame
        done = self.worker.frames_done
        if done == 0:
            raise PromptError(f"no image received yet: {what} needs a frame to apply to")
        raise PromptError(f"no frame arrived since the reset: {what} needs a frame to apply to (the {done} frames "
                          "before the reset are forgotten)")

    def object_prompted(self, object_id: int, frame: ReceivedFrame, label: str = "", source: str = "~/prompt") -> None:
        """After the tracker accepted a prompt for `object_id` on `frame` (any source but detections): the registry
        records it (ADDED for a new object, REACQUIRED for a LOST one; a non-empty label replaces the object's) and
        the event goes out. A registry refusal (max_objects) takes the object back out of the tracker."""
        try:
            event = self.registry.prompted(object_id, frame.time_s, label, source)
        except ValueError:
            self.tracker.remove_object(object_id)
            raise
        self.outputs.publish_events([event] if event else [], frame)

    def apply_prompt(self, request: PromptRequest, frame: ReceivedFrame | None, found: bool) -> PromptAnswer:
        """Check, prompt the tracker (which validates the prompt), record and publish."""
        frame = self.need_frame(frame, "a prompt")
        t0 = time.perf_counter()
        args = prompt_args(request, self.registry, self.registry.options.max_objects)
        made_by = self.registry.get(args.object_id) if args.object_id in self.registry else None
        result = self.tracker.add_prompt(args.object_id, points=args.points, labels=args.labels, box=args.box,
                                         mask=args.mask, stamp=frame.seq, replace=args.replace,
                                         multimask=request.multimask)
        self.object_prompted(args.object_id, frame, request.label, request.source)
        masks = self.outputs.publish(frame, result, want_masks=True)
        where = "" if found else (f" (stamp {request.stamp_ns} is not among the last {self.options.history} frames: "
                                  "applied to the newest)")
        if made_by is not None and made_by.label_score > 0:  # e.g. click_object_id 1 on a detector's object 1
            where += f" (refines object {args.object_id} {made_by.label!r}, made by a detection)"
        what = args.describe()
        if result.candidates is not None:
            what += ", candidates of IoU " + ", ".join(f"{v:.3f}" for v in np.clip(result.candidates.iou, 0, 1))
        message = f"object {args.object_id} prompted on frame {frame.stamp_ns} with {what}{where}"
        return PromptAnswer(message, masks, result, frame, self.registry.get(args.object_id).label,
                            (time.perf_counter() - t0) * 1e3)

    def apply_detections(self, raws: list[RawDetection], stamp_ns: int, frame: ReceivedFrame | None,
                         found: bool) -> AppliedDetections:
        """One detection array on the frame its stamp names (else the newest): new objects, re-acquired ones."""
        frame = self.need_frame(frame, "a detection array")
        detections = parse_detections(raws, frame.rgb.shape[:2])
        applied = apply_detections(self.tracker, self.registry, detections, seq=frame.seq,
                                   time_s=frame.time_s)
        for key, warning, text in self._detection_log.lines(applied, self.registry, found, stamp_ns):
            self.outputs.warn(key, text, warning)
        self.outputs.publish_events(list(applied.events), frame)
        return applied

    def remove_object(self, object_id: int, frame: ReceivedFrame | None) -> str:
        """Forget one object (REMOVED) -> the answer's text; PromptError for an id not tracked."""
        if object_id not in self.registry:
            known = ", ".join(map(str, sorted(self.registry.ids))) or "none"
            raise PromptError(f"unknown object id {object_id} (tracked: {known})")
        self.tracker.remove_object(object_id)
        event = self.registry.remove(object_id, frame.time_s if frame is not None else 0.0, "~/remove_object")
        self.outputs.publish_events([event], frame)
        return f"object {object_id} removed"

    def select_candidate(self, object_id: int, index: int) -> tuple[str, Any]:
        """Make candidate `index` of the object's last multimask prompt its mask -> (text, the re-published masks of
        the candidates' frame, None once that frame left the history). The tracker refuses an unknown object or
        index (ValueError) before changing anything."""
        result = self.tracker.select_candidate(object_id, index)
        at = self.worker.frame_with_seq(result.stamp)
        masks = self.outputs.publish(at, result, want_masks=True) if at is not None else None
        return f"object {object_id}: candidate {index} selected on frame {at.stamp_ns if at else '?'}", masks

    def segment_everything(self, frame: ReceivedFrame | None,
                           args_for: Callable[[set[int]], dict]) -> tuple[EverythingResult, dict, ReceivedFrame]:
        """Segment everything on `frame` with the arguments `args_for(tracked ids)` gives; found masks that are
        tracked become objects (ADDED) and the frame's outputs are published again."""
        frame = self.need_frame(frame, "segment everything")
        args = args_for(set(self.registry.ids))
        everything = segment_everything(self.tracker, frame.seq, **args)
        for object_id in everything.object_ids:
            self.object_prompted(object_id, frame, "", "~/segment_everything")
        if everything.object_ids:
            self.outputs.publish(frame, self.tracker.result(frame.seq))
        return everything, args, frame

    def forget(self, frame: ReceivedFrame | None, reason: str) -> int:
        """Forget every object and frame (registry, tracker, frame history, the caller's per-frame state), one
        REMOVED event each on `frame` (the newest; None before any). Every reset goes through here; returns the
        count."""
        events = self.registry.reset(frame.time_s if frame is not None else 0.0, reason)
        self.tracker.reset()
        self.worker.clear_history()
        self.outputs.forgot()
        self.outputs.publish_events(events, frame)
        return len(events)
