"""A synthetic camera without ROS: moving shapes of varied colours and sizes over a textured background, with the
ground-truth (visible) mask of every shape. Seeded and random-access (frame t is a pure function of seed and t), any
H x W. Used by the demo, node tests and benchmarks; training code can reuse it for endless labelled video.

    scene = SyntheticScene(480, 640, num_objects=4, seed=0)
    f = scene.frame(10)        # f.rgb [H, W, 3] uint8, f.masks [N, H, W] bool, f.object_ids [1..N]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sam2_ros.sim.shapes import SHAPES, hsv_to_rgb, named_shape_mask, texture


@dataclass
class SyntheticFrame:
    """One rendered frame: pixels and the visible mask of each object (later objects occlude earlier ones)."""

    index: int
    rgb: np.ndarray         # [H, W, 3] uint8
    masks: np.ndarray       # [N, H, W] bool, visible part of each object
    object_ids: list[int]   # [N], 1..N

    def box(self, k: int) -> tuple[int, int, int, int] | None:
        """x_min, y_min, x_max (exclusive), y_max (exclusive) of object k's visible mask; None when hidden."""
        ys, xs = np.nonzero(self.masks[k])
        if xs.size == 0:
            return None
        return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1

    def inner_point(self, k: int) -> tuple[float, float] | None:
        """A pixel (x, y) deep inside object k's visible mask (see inner_point); None when it is hidden."""
        return inner_point(self.masks[k]) if self.masks[k].any() else None


def inner_point(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of a mask pixel farthest from its border (city-block distance; outside the image is border), the most
    central such pixel: where a person would click to pick the object."""
    padded = np.pad(mask, 1)  # outside the image counts as border
    h, w = padded.shape
    dist = np.where(padded, h + w, 0)
    for _ in range(2):  # forward/backward passes along one axis, then (transposed) the other: exact L1 distance
        for y in range(1, dist.shape[0]):
            dist[y] = np.minimum(dist[y], dist[y - 1] + 1)
        for y in range(dist.shape[0] - 2, -1, -1):
            dist[y] = np.minimum(dist[y], dist[y + 1] + 1)
        dist = dist.T.copy()
    ys, xs = np.nonzero(dist == dist.max())  # the deepest pixels; take the one nearest their centroid
    j = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    return float(xs[j] - 1), float(ys[j] - 1)


class SyntheticScene:
    """Deterministic moving-shapes video of any size; shapes follow smooth Lissajous paths and may overlap."""

    def __init__(self, height: int = 480, width: int = 640, num_objects: int = 3, seed: int = 0) -> None:
        if height < 16 or width < 16:
            raise ValueError(f"image must be at least 16x16, got {width}x{height}")
        if num_objects < 0:
            raise ValueError(f"num_objects must be >= 0, got {num_objects}")
        self.height, self.width, self.num_objects, self.seed = height, width, num_objects, seed
        rng = np.random.default_rng(seed)
        self._background = texture(height, width, rng)
        side = min(height, width)
        self._objects = []
        for k in range(num_objects):
            hue = (k / max(num_objects, 1) + rng.uniform(0, 0.15)) % 1.0
            self._objects.append(dict(
                shape=SHAPES[k % len(SHAPES)],
                size=side * rng.uniform(0.12, 0.25),           # radius-like extent, pixels
                aspect=rng.uniform(0.55, 1.0),
                colour=hsv_to_rgb(hue, rng.uniform(0.6, 1.0), rng.uniform(0.75, 1.0)),
                centre=(rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height),
                amplitude=(rng.uniform(0.1, 0.25) * width, rng.uniform(0.1, 0.25) * height),
                speed=(rng.uniform(0.02, 0.06), rng.uniform(0.02, 0.06)),  # radians per frame
                phase=(rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi)),
                spin=rng.uniform(-0.03, 0.03),
                stripes=rng.uniform(0.05, 0.2)))
        self.object_ids = list(range(1, num_objects + 1))
        self._yy, self._xx = np.mgrid[0:height, 0:width].astype(np.float32)

    def frame(self, index: int) -> SyntheticFrame:
        """Render frame `index` (any int; the same index always gives the same frame)."""
        rgb = self._background.copy()
        full = []
        for k, obj in enumerate(self._objects):
            cx = obj["centre"][0] + obj["amplitude"][0] * np.sin(obj["speed"][0] * index + obj["phase"][0])
            cy = obj["centre"][1] + obj["amplitude"][1] * np.sin(obj["speed"][1] * index + obj["phase"][1])
            angle = obj["spin"] * index + k
            # Work on the shape's bounding square only (rendering stays cheap at 30 Hz and 640x480).
            r = obj["size"] * 1.5 + 1  # covers a box's corners (aspect <= 1)
            y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 1, self.height)
            x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 1, self.width)
            mask = np.zeros((self.height, self.width), bool)
            if y1 > y0 and x1 > x0:
                xx, yy = self._xx[y0:y1, x0:x1], self._yy[y0:y1, x0:x1]
                local = named_shape_mask(obj["shape"], xx - cx, yy - cy, obj["size"], obj["aspect"], angle)
                mask[y0:y1, x0:x1] = local
                # A little shading so objects are not flat paint: stripes along the object's own axis.
                u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
                shade = 0.85 + 0.15 * np.sin(u[local] * obj["stripes"])
                patch = rgb[y0:y1, x0:x1]
                patch[local] = np.clip(obj["colour"][None, :] * shade[:, None], 0, 255).astype(np.uint8)
            full.append(mask)
        visible = []
        for k, mask in enumerate(full):  # later objects are drawn on top
            vis = mask.copy()
            for later in full[k + 1:]:
                vis &= ~later
            visible.append(vis)
        masks = np.stack(visible) if visible else np.zeros((0, self.height, self.width), bool)
        return SyntheticFrame(index, rgb, masks, list(self.object_ids))
