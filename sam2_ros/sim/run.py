"""Detector-driven tracking on a synthetic camera without ROS, scored against the ground truth: the loop the node runs
(track_frame per frame, apply_detections per detection array), used by the tests and bench/objects_quality.py.

    run = run_synthetic(StreamingTracker(model), scene, SyntheticDetector(), frames=40)
    run.mean_j, run.truth, run.events
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sam2_ros.objects.detections import parse_detections
from sam2_ros.objects.driver import apply_detections, track_frame
from sam2_ros.objects.types import Event, ObjectOptions
from sam2_ros.objects.registry import ObjectRegistry
from sam2_ros.sim.detector import SyntheticDetector
from sam2_ros.sim.metrics import IdentityScore, jaccard


@dataclass
class SyntheticRun:
    """What a run did: the registry at the end, every event with its frame, and J against the ground truth."""

    registry: ObjectRegistry
    events: list[tuple[int, Event]] = field(default_factory=list)  # (frame index, event)
    truth: dict[int, int] = field(default_factory=dict)  # object id -> scene shape id of the detection that made it
    scores: list[float] = field(default_factory=list)  # J per (object, frame), from the object's first frame on
    failed: list[tuple[int, int, str]] = field(default_factory=list)  # (frame, detection, tracker error)
    skipped: int = 0  # malformed detections
    identity: IdentityScore = field(default_factory=IdentityScore)  # id switches against the ground truth
    status: list[dict[int, int]] = field(default_factory=list)  # per frame: object id -> Status after detections

    @property
    def duplicates(self) -> int:
        """Objects made from a detection of a shape that already had one (ids beyond one per shape)."""
        made = list(self.truth.values())
        return len(made) - len(set(made))

    @property
    def mean_j(self) -> float:
        """Mean J over every object on every frame since its creation (nan when there was none)."""
        return float(np.mean(self.scores)) if self.scores else float("nan")


def run_synthetic(tracker: Any, camera: Any, detector: SyntheticDetector, frames: int,
                  options: ObjectOptions | None = None, fps: float = 15.0, t0: float = 100.0,
                  detect_every: int = 1, lag: int = 0) -> SyntheticRun:
    """Track `frames` frames of `camera` (a SyntheticScene, HiddenShapeScene or ScriptedScene) with objects made by
    `detector`'s boxes; frame i has tracker stamp i and time t0 + i / fps seconds. The detector answers every
    `detect_every`-th frame, `lag` frames late (the array of frame i - lag arrives after frame i was tracked). J
    and identity are taken on each frame after its detections were applied (what the node publishes)."""
    run = SyntheticRun(ObjectRegistry(options))
    for i in range(frames):
        frame, stamp = camera.frame(i), t0 + i / fps
        _, events = track_frame(tracker, run.registry, frame.rgb, seq=i, time_s=stamp)
        j = i - lag
        if j < 0 or j % detect_every:
            run.events += [(i, e) for e in events]
            _score(run, tracker, frame, i)
            continue
        seen = camera.frame(j) if lag else frame
        found = detector.detect(seen)
        height, width = frame.masks.shape[1:]
        applied = apply_detections(tracker, run.registry, parse_detections([d.raw for d in found], (height, width)),
                                   seq=j, time_s=t0 + j / fps)
        run.skipped += len(applied.plan.skipped)
        run.failed += [(i, det, text) for det, text in applied.failed]
        for action in applied.plan.new:
            run.truth[action.object_id] = found[action.detection].truth_id
        run.events += [(i, e) for e in events + list(applied.events)]
        _score(run, tracker, frame, i)
    return run


def _score(run: SyntheticRun, tracker: Any, frame: Any, i: int) -> None:
    result = tracker.result(i)
    for k, object_id in enumerate(result.object_ids):
        shape = run.truth.get(object_id, 0)
        truth = frame.masks[frame.object_ids.index(shape)] if shape in frame.object_ids else \
            np.zeros_like(result.masks[k])  # an object made from a false positive: nothing is right
        run.scores.append(jaccard(result.masks[k], truth))
    run.identity.update(result.object_ids, result.masks, frame.object_ids, frame.masks)
    run.status.append({o.object_id: int(o.status) for o in map(run.registry.get, run.registry.ids)})
