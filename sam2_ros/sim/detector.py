"""A detector for the synthetic camera (sam2_ros.sim.scene): the ground-truth boxes of the visible shapes with a class
name each, for tests and the demo's detector mode; plus a scene in which a shape leaves the view for a while.

    scene = HiddenShapeScene(SyntheticScene(240, 320, num_objects=3, seed=0), {2: range(20, 60)})
    detector = SyntheticDetector(seed=0)
    found = detector.detect(scene.frame(25))   # no detection of shape 2: it is out of view on frames 20..59

Noise (jitter, dropout, false positives) is a pure function of (seed, frame index), like the scene itself.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sam2_ros.objects.boxes import box_iou, rotated_size_for_bounds
from sam2_ros.objects.detections import RawDetection
from sam2_ros.sim.scene import SyntheticFrame, SyntheticScene

CLASS_NAMES = ("cup", "bottle", "book", "phone", "apple", "ball", "remote", "clock")  # shape k: CLASS_NAMES[k - 1]
FALSE_POSITIVE_CLASS = "clutter"


@dataclass(frozen=True)
class SyntheticDetection:
    """One detection and the scene object it was made from (truth_id; 0 for a false positive)."""

    raw: RawDetection
    truth_id: int


class SyntheticDetector:
    """Boxes of the shapes visible in a SyntheticFrame, as a detector would publish them.

    class_names: a name per object id ({id: name}), or a list used in turn (id k -> names[(k - 1) % len]).
    score: the score of every true detection (plus Gaussian score_noise, clipped to [0, 1]).
    jitter: standard deviation (pixels) of noise added to each box's centre and size.
    dropout: probability that a visible shape is not detected on a frame.
    false_positives: mean number of spurious boxes per frame (class FALSE_POSITIVE_CLASS, score 0.2..0.6).
    theta: publish rotated boxes (radians) whose axis-aligned bounds are the true box (theta 0 where impossible).
    min_area: shapes with fewer visible pixels are not detected (slivers behind other shapes).
    withheld: {object_id: frames} on which that shape is not detected even though it is visible.
    """

    def __init__(self, class_names: Sequence[str] | Mapping[int, str] = CLASS_NAMES, score: float = 0.9,
                 score_noise: float = 0.0, jitter: float = 0.0, dropout: float = 0.0, false_positives: float = 0.0,
                 theta: float = 0.0, min_area: int = 20, withheld: Mapping[int, range] | None = None,
                 seed: int = 0) -> None:
        if not class_names:
            raise ValueError("class_names must not be empty")
        if not 0.0 <= dropout <= 1.0 or jitter < 0 or false_positives < 0 or score_noise < 0:
            raise ValueError("dropout must be in [0, 1]; jitter, false_positives and score_noise >= 0")
        self.class_names = class_names
        self.score, self.score_noise, self.jitter, self.dropout = score, score_noise, jitter, dropout
        self.false_positives, self.theta, self.min_area, self.seed = false_positives, theta, min_area, seed
        self.withheld = dict(withheld or {})

    def class_of(self, object_id: int) -> str:
        """The class name this detector gives scene object `object_id`."""
        if isinstance(self.class_names, Mapping):
            return self.class_names[object_id]
        return self.class_names[(object_id - 1) % len(self.class_names)]

    def detect(self, frame: SyntheticFrame) -> list[SyntheticDetection]:
        """The detections of one frame: true ones in scene order, then false positives."""
        height, width = frame.masks.shape[1:]
        rng = np.random.default_rng((self.seed & 0xFFFFFFFF, frame.index & 0xFFFFFFFF))
        out = []
        for k, object_id in enumerate(frame.object_ids):
            keep = rng.random() >= self.dropout  # drawn for every shape, so noise does not depend on visibility
            noise = rng.normal(0.0, 1.0, 5)
            if not keep or frame.index in self.withheld.get(object_id, ()):
                continue
            if np.count_nonzero(frame.masks[k]) < self.min_area:
                continue
            x0, y0, x1, y1 = frame.box(k)
            cx, cy = (x0 + x1) / 2 + self.jitter * noise[0], (y0 + y1) / 2 + self.jitter * noise[1]
            w = max(1.0, x1 - x0 + self.jitter * noise[2])
            h = max(1.0, y1 - y0 + self.jitter * noise[3])
            score = float(np.clip(self.score + self.score_noise * noise[4], 0.0, 1.0))
            out.append(SyntheticDetection(self._raw(cx, cy, w, h, self.class_of(object_id), score), object_id))
        for _ in range(rng.poisson(self.false_positives) if self.false_positives else 0):
            w, h = rng.uniform(0.05, 0.3) * width, rng.uniform(0.05, 0.3) * height
            cx, cy = rng.uniform(w / 2, width - w / 2), rng.uniform(h / 2, height - h / 2)
            out.append(SyntheticDetection(self._raw(cx, cy, w, h, FALSE_POSITIVE_CLASS, float(rng.uniform(0.2, 0.6))),
                                          0))
        return out

    def _raw(self, cx: float, cy: float, w: float, h: float, class_id: str, score: float) -> RawDetection:
        sizes = rotated_size_for_bounds(w, h, self.theta) if self.theta else None
        if sizes is None:
            return RawDetection(float(cx), float(cy), float(w), float(h), 0.0, ((class_id, score),))
        return RawDetection(float(cx), float(cy), sizes[0], sizes[1], float(self.theta), ((class_id, score),))


class HiddenShapeScene:
    """A SyntheticScene in which chosen shapes are out of view on chosen frames: their pixels show the scene's own
    background and their ground-truth masks are empty. Shapes they covered keep their visible masks (the hidden
    shape acts as an occluder that looks like the background), so pixels and ground truth stay consistent."""

    def __init__(self, scene: SyntheticScene, hidden: Mapping[int, range]) -> None:
        unknown = set(hidden) - set(scene.object_ids)
        if unknown:
            raise ValueError(f"no such shapes: {sorted(unknown)} (the scene has {scene.object_ids})")
        self.scene = scene
        self.hidden = dict(hidden)
        # The same seed with no objects renders the bare background: the scene draws its texture first.
        self._background = SyntheticScene(scene.height, scene.width, num_objects=0, seed=scene.seed).frame(0).rgb

    @property
    def height(self) -> int:
        return self.scene.height

    @property
    def width(self) -> int:
        return self.scene.width

    @property
    def object_ids(self) -> list[int]:
        return self.scene.object_ids

    def frame(self, index: int) -> SyntheticFrame:
        """The scene's frame with the shapes hidden on this frame removed."""
        frame = self.scene.frame(index)
        for k, object_id in enumerate(frame.object_ids):
            if index in self.hidden.get(object_id, ()):
                frame.rgb[frame.masks[k]] = self._background[frame.masks[k]]
                frame.masks[k] = False
        return frame


def pick_hide_window(scene: SyntheticScene, object_id: int, frames: int = 40, starts: range = range(5, 120),
                     min_area: int = 200) -> tuple[int, float]:
    """(start, IoU): the start of the `frames`-frame window in `starts` after which shape `object_id` reappears
    closest to where it left (highest IoU of its boxes on frames start - 1 and start + frames, both with at least
    min_area visible pixels), so a detection of the returning shape can re-acquire the lost object by box IoU."""
    k = scene.object_ids.index(object_id)
    cache: dict[int, tuple[np.ndarray, int]] = {}

    def box(index: int) -> tuple[np.ndarray, int]:
        if index not in cache:
            frame = scene.frame(index)
            b = frame.box(k)
            cache[index] = (np.array(b if b is not None else (0, 0, 0, 0), np.float64), int(frame.masks[k].sum()))
        return cache[index]

    best = (-1, -1.0)
    for start in starts:
        (before, area0), (after, area1) = box(start - 1), box(start + frames)
        if min(area0, area1) < min_area:
            continue
        iou = float(box_iou(before[None], after[None])[0, 0])
        if iou > best[1]:
            best = (start, iou)
    if best[0] < 0:
        raise ValueError(f"shape {object_id} is never visible enough around a {frames}-frame window in {starts}")
    return best
