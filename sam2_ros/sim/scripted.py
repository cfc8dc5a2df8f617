"""Scenes with explicit trajectories for object permanence (issue 24): shapes that leave the view and come back on
the same or the opposite side, and two same-class shapes of different colour crossing paths, with ground truth per
frame (visible masks, later shapes in front). Frames are pure functions of the index, like SyntheticScene's.

    scene = leave_and_return("opposite")   # cup, box, ball; the ball is out of view on frames 12..51
    scene = crossing()                     # two cups; cup 2 passes in front of cup 1 around frame 25
    f = scene.frame(30)                    # a SyntheticFrame: rgb, masks, object_ids, box(k)
    detector = SyntheticDetector(class_names=scene.labels)
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sam2_ros.sim.scene import SyntheticFrame
from sam2_ros.sim.shapes import hsv_to_rgb, named_shape_mask, texture

Path = Callable[[int], tuple[float, float]]  # frame index -> centre (x, y) in pixels (outside the image: not seen)


@dataclass(frozen=True)
class ScriptedShape:
    """One shape of a scripted scene: outline, size (radius-like, pixels), colour (RGB 0..255) and path."""

    shape: str
    size: float
    colour: tuple[float, float, float]
    path: Path
    label: str
    aspect: float = 0.8


class ScriptedScene:
    """A camera over a textured background with shapes on explicit paths; later shapes are drawn in front."""

    def __init__(self, shapes: list[ScriptedShape], height: int = 240, width: int = 320, frames: int = 100,
                 seed: int = 0) -> None:
        self.shapes, self.height, self.width, self.frames, self.seed = shapes, height, width, frames, seed
        self._background = texture(height, width, np.random.default_rng(seed))
        self.object_ids = list(range(1, len(shapes) + 1))
        self.labels = {k + 1: s.label for k, s in enumerate(shapes)}  # SyntheticDetector(class_names=...)
        self._yy, self._xx = np.mgrid[0:height, 0:width].astype(np.float32)

    @property
    def num_objects(self) -> int:
        return len(self.shapes)

    def frame(self, index: int) -> SyntheticFrame:
        """Render frame `index`: pixels and each shape's visible mask."""
        rgb = self._background.copy()
        full = []
        for k, s in enumerate(self.shapes):
            cx, cy = s.path(index)
            mask = named_shape_mask(s.shape, self._xx - cx, self._yy - cy, s.size, s.aspect, 0.3 * k)
            u = (self._xx - cx) * 0.8 + (self._yy - cy) * 0.6
            shade = 0.85 + 0.15 * np.sin(u[mask] * 0.15)
            rgb[mask] = np.clip(np.asarray(s.colour, np.float32)[None] * shade[:, None], 0, 255).astype(np.uint8)
            full.append(mask)
        visible = [m & ~np.any(full[k + 1:], axis=0) if k + 1 < len(full) else m for k, m in enumerate(full)]
        masks = np.stack(visible) if visible else np.zeros((0, self.height, self.width), bool)
        return SyntheticFrame(index, rgb, masks, list(self.object_ids))


LEAVE_AT, BACK_AT = 12, 52  # the ball is out of view on frames LEAVE_AT .. BACK_AT - 1 (40 frames)


def leave_and_return(side: str = "same", height: int = 240, width: int = 320, seed: int = 0) -> ScriptedScene:
    """A cup and a box that stay, and a ball that leaves on the right at LEAVE_AT and re-enters at BACK_AT on the
    same (right) or the opposite (left) side, moving inwards; 70 frames."""
    if side not in ("same", "opposite"):
        raise ValueError(f"side must be 'same' or 'opposite', got {side!r}")
    r = 0.1 * height  # ball radius
    start = 0.7 * width

    def ball(i: int) -> tuple[float, float]:
        if LEAVE_AT <= i < BACK_AT:
            return width + 10 * r, 0.45 * height  # out of view
        if i < LEAVE_AT:
            return start + (width + r + 1 - start) * i / LEAVE_AT, 0.45 * height
        step = 2.5 * (i - BACK_AT) + 0.6 * r  # in view from its first frame back
        return (width + r - step, 0.45 * height) if side == "same" else (-r + step, 0.45 * height)

    return ScriptedScene([
        ScriptedShape("box", 0.11 * height, tuple(hsv_to_rgb(0.0, 0.8, 0.9)), lambda i: (0.3 * width + 0.3 * i,
                                                                                        0.3 * height), "cup"),
        ScriptedShape("triangle", 0.13 * height, tuple(hsv_to_rgb(0.33, 0.8, 0.8)),
                      lambda i: (0.35 * width, 0.75 * height - 0.2 * i), "box"),
        ScriptedShape("disc", r, tuple(hsv_to_rgb(0.6, 0.8, 0.9)), ball, "ball"),
    ], height, width, frames=BACK_AT + 18, seed=seed)


CROSS_AT = 25  # the frame on which the two cups' centres pass each other


def crossing(height: int = 240, width: int = 320, seed: int = 0) -> ScriptedScene:
    """Two cups of different colour crossing paths on one row: cup 1 moves right, cup 2 (drawn in front) moves left;
    their centres pass at CROSS_AT, where cup 2 hides cup 1 all but a sliver (under the detector's 20 px on about
    3 frames); 50 frames."""
    r = 0.12 * height
    speed = (width - 2 * (r + 8)) / (2 * CROSS_AT)
    return ScriptedScene([
        ScriptedShape("ellipse", r, tuple(hsv_to_rgb(0.0, 0.85, 0.9)),
                      lambda i: (r + 8 + speed * i, 0.48 * height), "cup", aspect=0.85),
        ScriptedShape("ellipse", r, tuple(hsv_to_rgb(0.38, 0.85, 0.75)),
                      lambda i: (width - r - 8 - speed * i, 0.48 * height), "cup", aspect=0.85),
    ], height, width, frames=2 * CROSS_AT, seed=seed)
