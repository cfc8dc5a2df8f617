"""Where a detector's object should be now: a constant-velocity (alpha-beta) filter on the boxes of the detections
assigned to it, so matching can follow an object through a crossing where its mask and its neighbour's overlap.

The state is a box and the velocity of its centre (pixels per second of the frames' own stamps); each confirmed
detection box corrects it (alpha for position and size, beta for velocity: the steady-state gains of a Kalman filter
with accurate measurements); prediction moves the centre, keeps the size, and extrapolates at most MAX_PREDICT_S.
"""
from __future__ import annotations

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
        dt = float(np.clip(stamp - self.stamp, -MAX_PREDICT_S, MAX_PREDICT_S))
        vx, vy = self.velocity
        return np.asarray(self.box, np.float64) + dt * np.array([vx, vy, vx, vy])

    def update(self, box: Sequence[float], stamp: float) -> "BoxMotion":
        """Corrected by the detection box seen at `stamp`; a box older than the state's (a late array) or at the
        same stamp only corrects position and size."""
        z = np.asarray(box, np.float64).reshape(4)
        dt = float(stamp) - self.stamp
        if dt <= 0:
            mixed = np.asarray(self.box) + ALPHA * (z - np.asarray(self.box))
            return BoxMotion(tuple(mixed.tolist()), self.stamp, self.velocity)
        predicted = self.predict(stamp)
        residual = z - predicted  # [4]
        box = predicted + ALPHA * residual
        centre_residual = 0.5 * (residual[:2] + residual[2:])  # [2] of the centre
        velocity = np.asarray(self.velocity) + BETA * centre_residual / min(dt, MAX_PREDICT_S)
        size = np.sqrt(max((z[2] - z[0]) * (z[3] - z[1]), 1.0))
        speed, limit = float(np.hypot(*velocity)), MAX_SPEED * size
        if speed > limit:
            velocity *= limit / speed
        return BoxMotion(tuple(box.tolist()), float(stamp), (float(velocity[0]), float(velocity[1])))


def predict_boxes(motions: Sequence[BoxMotion | None], stamp: float) -> np.ndarray:
    """[N, 4] each filter's box at `stamp`; a NaN row where an object has none."""
    out = np.full((len(motions), 4), np.nan)
    for k, motion in enumerate(motions):
        if motion is not None:
            out[k] = motion.predict(stamp)
    return out
