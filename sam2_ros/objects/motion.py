"""Where a detector's object should be now: a constant-velocity (alpha-beta) filter on the boxes of the detections
assigned to it, so matching can follow an object through a crossing where its mask and its neighbour's overlap.

The state is a box and the velocity of its centre (pixels per second of the frames' own stamps); each confirmed
detection box corrects it (alpha for position and size, beta for velocity: the steady-state gains of a Kalman filter
with accurate measurements); prediction moves the centre, keeps the size, and extrapolates at most MAX_PREDICT_S.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ALPHA, BETA = 0.75, 0.35  # gains: position/size, velocity
MAX_PREDICT_S = 1.0       # never extrapolate further than this past the last confirmed box
MAX_SPEED = 10.0          # |velocity| is clipped to this many box sizes per second (a jittery box is not a jet)


@dataclass(frozen=True)
class BoxMotion:
    """A box (x_min, y_min, x_max, y_max) at `stamp` seconds and its centre's velocity (vx, vy) in pixels / s."""

    box: tuple[float, float, float, float]
    stamp: float
    velocity: tuple[float, float] = (0.0, 0.0)

    @staticmethod
    def start(box: Sequence[float], stamp: float) -> "BoxMotion":
        """The filter of an object first seen in `box` at `stamp`, at rest."""
        return BoxMotion(tuple(float(v) for v in box), float(stamp))

    def predict(self, stamp: float) -> np.ndarray:
        """[4] the box expected at `stamp` (earlier stamps extrapolate backwards, as for a late detection array)."""
        return np.array(self._predict(stamp), np.float64)

    def _predict(self, stamp: float) -> list[float]:
        dt = min(max(float(stamp) - self.stamp, -MAX_PREDICT_S), MAX_PREDICT_S)
        vx, vy = self.velocity
        x0, y0, x1, y1 = self.box
        return [x0 + dt * vx, y0 + dt * vy, x1 + dt * vx, y1 + dt * vy]

    def update(self, box: Sequence[float], stamp: float) -> "BoxMotion":
        """Corrected by the detection box seen at `stamp`; a box older than the state's (a late array) or at the
        same stamp only corrects position and size. (Plain floats: four numbers are cheaper without numpy.)"""
        z = [float(v) for v in box]
        dt = float(stamp) - self.stamp
        if dt <= 0:
            return BoxMotion(tuple(b + ALPHA * (v - b) for b, v in zip(self.box, z)), self.stamp, self.velocity)
        predicted = self._predict(stamp)
        residual = [v - p for v, p in zip(z, predicted)]
        box = tuple(p + ALPHA * r for p, r in zip(predicted, residual))
        gain = BETA / min(dt, MAX_PREDICT_S)
        vx = self.velocity[0] + gain * 0.5 * (residual[0] + residual[2])  # the centre's residual
        vy = self.velocity[1] + gain * 0.5 * (residual[1] + residual[3])
        size = math.sqrt(max((z[2] - z[0]) * (z[3] - z[1]), 1.0))
        speed, limit = math.hypot(vx, vy), MAX_SPEED * size
        if speed > limit:
            vx, vy = vx * limit / speed, vy * limit / speed
        return BoxMotion(box, float(stamp), (vx, vy))


def predict_boxes(motions: Sequence[BoxMotion | None], stamp: float) -> np.ndarray:
    """[N, 4] each filter's box at `stamp`; a NaN row where an object has none."""
    out = np.full((len(motions), 4), np.nan)
    for k, motion in enumerate(motions):
        if motion is not None:
            out[k] = motion._predict(stamp)
    return out
