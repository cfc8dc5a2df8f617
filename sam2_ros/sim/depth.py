"""A registered depth camera for the synthetic scene (sam2_ros.sim.scene): every shape is a plane at a known
distance in front of a background plane, with sensor noise and invalid pixels, plus the ground truth a 3-D test needs.

    scene = SyntheticScene(480, 640, num_objects=3, seed=0)
    camera = SyntheticDepthCamera(scene)
    f = scene.frame(10)
    d = camera.render(f, "16UC1", scale=0.5)   # d.depth [240, 320] uint16 mm; d.centroids [N, 3] m
    k = camera.intrinsics.k                    # the colour image's K ([3, 3]); d.intrinsics is the depth image's

Geometry: the scene draws later objects on top, so object k's plane is nearer than object k-1's everywhere in the
image (planes are slightly tilted and drift slowly in distance, never enough to change the order), and all are in
front of the background. A plane's inverse depth is affine in normalised image coordinates (x/z, y/z), which is what
makes it a plane in 3-D. The noise (seeded per frame: frame t is a pure function of the seed and t) is Gaussian with
a sigma growing with z^2 as in structured-light/stereo sensors, "flying pixels" mixing the two depths at object edges,
dropouts and isolated far/near speckles, so the geometry filters have real work to do.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sam2_ros.geometry.filters import erode
from sam2_ros.geometry.intrinsics import Intrinsics, sample_mask, source_index
from sam2_ros.sim.scene import SyntheticFrame, SyntheticScene

NEAREST, FARTHEST, BACKGROUND = 0.9, 2.4, 3.5   # m: object plane distances on the optical axis, background plane
NOISE_SIGMA = (0.0005, 0.0012)                 # m: sigma(z) = a + b z^2 (about 2 mm at 1 m, 7 mm at 2.4 m)
DROPOUT, SPECKLE = 0.015, 0.003                # fractions of pixels: no reading; a random depth in 0.2..8 m
EDGE_INVALID, EDGE_MIXED = 0.3, 0.5            # fractions of depth-edge pixels: no reading; a mix of both sides


@dataclass
class DepthFrame:
    """One rendered depth image and the ground truth of the frame it belongs to."""

    index: int
    depth: np.ndarray          # [Hd, Wd] uint16 millimetres (16UC1, 0 = invalid) or float32 metres (32FC1, NaN)
    encoding: str              # "16UC1" | "32FC1"
    intrinsics: Intrinsics     # of the depth image (the colour camera's scaled, pixel-centre convention)
    centroids: np.ndarray      # [N, 3] float64 m, mean 3-D point of each object's visible part; NaN when hidden
    visible_pixels: np.ndarray  # [N] int, colour pixels each object shows


class SyntheticDepthCamera:
    """Depth registered to a SyntheticScene's colour camera (same optical frame, any resolution)."""

    def __init__(self, scene: SyntheticScene, seed: int | None = None, noise: bool = True) -> None:
        self.scene = scene
        self.seed = scene.seed if seed is None else seed
        self.noise = noise
        h, w = scene.height, scene.width
        # A 525-px-at-640 camera (Kinect-like), fx != fy and an off-centre principal point so swaps show in tests.
        self.intrinsics = Intrinsics(fx=0.82 * w, fy=0.81 * w, cx=(w - 1) / 2 + 3.5, cy=(h - 1) / 2 - 2.5,
                                     width=w, height=h)
        rng = np.random.default_rng([self.seed, 15])
        n = scene.num_objects
        # Inverse depth on the optical axis, far (first drawn) to near (last drawn), with a budget per gap.
        w_far, w_near = 1.0 / FARTHEST, 1.0 / NEAREST
        centres = np.linspace(w_far, w_near, n) if n > 1 else np.full(n, 1.0 / 1.5)
        gap = (w_near - w_far) / max(n - 1, 1) if n > 1 else 0.5
        xn_max = max(abs(-0.5 - self.intrinsics.cx), abs(w - 0.5 - self.intrinsics.cx)) / self.intrinsics.fx
        yn_max = max(abs(-0.5 - self.intrinsics.cy), abs(h - 0.5 - self.intrinsics.cy)) / self.intrinsics.fy
        # Each of tilt x, tilt y and drift moves 1/z by at most `budget` anywhere in the image; 3 budgets < gap / 2
        # and < the margin to the background (1/2.4 - 1/3.5 - 0.03 yn_max ~ 0.11 /m): the order never changes.
        budget = 0.15 * min(gap, 0.2)
        tilt_x = rng.uniform(-1, 1, n) * budget / xn_max
        tilt_y = rng.uniform(-1, 1, n) * budget / yn_max
        self._planes = dict(w0=centres, tx=tilt_x, ty=tilt_y, drift=budget * rng.uniform(0.5, 1.0, n),
                            speed=rng.uniform(0.02, 0.05, n), phase=rng.uniform(0, 2 * np.pi, n))
        # The background: a wall, slightly tilted (nearer at the bottom), behind the farthest object everywhere.
        self._background = (1.0 / BACKGROUND, 0.0, 0.03)

    def inverse_depth(self, index: int, xn: np.ndarray, yn: np.ndarray) -> np.ndarray:
        """[N + 1, ...] 1/z of each object's plane (rows 0..N-1) and the background (row N) at normalised coords."""
        p = self._planes
        w0 = p["w0"] + p["drift"] * np.sin(p["speed"] * index + p["phase"])                # [N]
        objects = w0[:, None] + p["tx"][:, None] * xn.reshape(1, -1) + p["ty"][:, None] * yn.reshape(1, -1)
        bw, bx, by = self._background
        background = (bw + bx * xn + by * yn).reshape(1, -1)
        return np.concatenate([objects, background]).reshape((-1,) + np.shape(xn))

    def render(self, frame: SyntheticFrame, encoding: str = "32FC1", scale: float = 1.0,
               size: tuple[int, int] | None = None) -> DepthFrame:
        """Depth image of `frame` in `encoding` at `scale` x the colour resolution (or `size` = (height, width))."""
        if encoding not in ("16UC1", "32FC1"):
            raise ValueError(f"encoding must be 16UC1 or 32FC1, got {encoding!r}")
        hc, wc = self.scene.height, self.scene.width
        hd, wd = size if size is not None else (max(1, round(hc * scale)), max(1, round(wc * scale)))
        intr = self.intrinsics.scaled_to(wd, hd)
        owner_c = _owner(frame.masks)                                                      # [Hc, Wc]
        owner = owner_c[source_index(hd, hc)[:, None], source_index(wd, wc)[None, :]]    # [Hd, Wd]
        xn = (np.arange(wd) - intr.cx) / intr.fx
        yn = (np.arange(hd) - intr.cy) / intr.fy
        xx, yy = np.meshgrid(xn, yn)                                                       # [Hd, Wd]
        inv = self.inverse_depth(frame.index, xx, yy)                                      # [N + 1, Hd, Wd]
        z = 1.0 / np.take_along_axis(inv, owner[None], axis=0)[0]                          # [Hd, Wd] true depth
        if self.noise:
            z = self._corrupt(z, owner, frame.index)
        centroids, visible = self._ground_truth(frame, owner_c)
        if encoding == "32FC1":
            depth = z.astype(np.float32)
        else:
            mm = np.where(np.isfinite(z), np.round(z * 1000.0), 0.0)
            depth = np.where((mm > 0) & (mm <= 65535), mm, 0).astype(np.uint16)
        return DepthFrame(frame.index, depth, encoding, intr, centroids, visible)

    def _ground_truth(self, frame: SyntheticFrame, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact centroid of each object's visible pixels (colour resolution, noise-free), and their count."""
        n = frame.masks.shape[0]
        centroids = np.full((n, 3), np.nan)
        visible = frame.masks.sum(axis=(1, 2))
        intr = self.intrinsics
        for k in range(n):
            ys, xs = np.nonzero(owner == k)
            if xs.size == 0:
                continue
            xn, yn = (xs - intr.cx) / intr.fx, (ys - intr.cy) / intr.fy
            z = 1.0 / self.inverse_depth(frame.index, xn, yn)[k]
            centroids[k] = [np.mean(xn * z), np.mean(yn * z), np.mean(z)]
        return centroids, visible

    def _corrupt(self, z: np.ndarray, owner: np.ndarray, index: int) -> np.ndarray:
        """Sensor noise, edge mixing, dropouts and speckles; invalid = NaN. Seeded by (seed, frame index)."""
        rng = np.random.default_rng([self.seed, index, 118])
        a, b = NOISE_SIGMA
        z = z + rng.standard_normal(z.shape) * (a + b * z * z)
        # Depth edges: a pixel whose 4-neighbour belongs to another surface, mixed with that neighbour or lost.
        other = np.full(z.shape, np.nan)
        for axis, step in ((0, 1), (0, -1), (1, 1), (1, -1)):
            shifted_owner = np.roll(owner, step, axis=axis)
            shifted_z = np.roll(z, step, axis=axis)
            edge = (shifted_owner != owner) & np.isnan(other)
            if axis == 0:
                edge[0 if step == 1 else -1, :] = False   # no wrap-around
            else:
                edge[:, 0 if step == 1 else -1] = False
            other[edge] = shifted_z[edge]
        edge = ~np.isnan(other)
        u = rng.random(z.shape)
        mixed = edge & (u < EDGE_MIXED)
        t = rng.random(z.shape)
        z = np.where(mixed, t * z + (1 - t) * other, z)
        lost = (edge & (u >= EDGE_MIXED) & (u < EDGE_MIXED + EDGE_INVALID)) | (rng.random(z.shape) < DROPOUT)
        speckle = rng.random(z.shape) < SPECKLE
        z = np.where(speckle, rng.uniform(0.2, 8.0, z.shape), z)
        z[lost] = np.nan
        return z


def erosion_shift(mask: np.ndarray, depth_shape: tuple[int, int], intrinsics: Intrinsics, z: float,
                  radius: int = 2) -> float:
    """How far (m, at depth z) eroding `mask` by `radius` depth px moves its 2-D centroid: the erosion's own bias.

    Ground truth is the centroid of the whole visible part; erosion (needed against edge bleeding) drops a ring of
    pixels, which moves the centroid of a crescent-shaped, heavily occluded part by up to several cm. Accuracy checks
    skip objects where this alone exceeds their tolerance (inf when nothing survives). intrinsics: the depth image's.
    """
    sampled = sample_mask(mask, *depth_shape)
    eroded = erode(sampled, radius)
    if not eroded.any():
        return float("inf")
    before, after = np.argwhere(sampled).mean(0), np.argwhere(eroded).mean(0)   # (v, u) depth px
    return float(max(abs(before[0] - after[0]) * z / intrinsics.fy, abs(before[1] - after[1]) * z / intrinsics.fx))


def _owner(masks: np.ndarray) -> np.ndarray:
    """[N, H, W] disjoint visible masks -> [H, W] int: the object index owning each pixel, N for the background."""
    n = masks.shape[0]
    owner = np.full(masks.shape[1:], n, dtype=np.int64)
    for k in range(n):
        owner[masks[k]] = k
    return owner
