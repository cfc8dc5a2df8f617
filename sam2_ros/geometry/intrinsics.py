"""Pinhole intrinsics of a registered depth image, and masks carried between image resolutions.

Pixel convention (the one CameraInfo's K and OpenCV use): integer pixel coordinates are pixel *centres*; an image of
width W covers u in [-0.5, W - 0.5]. Two images of the same field of view, W_a and W_b pixels wide, are related by
    u_b + 0.5 = (u_a + 0.5) * W_b / W_a
so scaling K by s = W_b / W_a gives fx_b = s fx_a and cx_b = s (cx_a + 0.5) - 0.5 (likewise y). This is exact for
depth made by binning / area averaging (a half-resolution depth pixel j averages colour pixels 2j and 2j + 1, centre
2j + 0.5). Plain `cx * s` (image_proc's resize, many scripts) is exact only for point subsampling (pixel j taken
from pixel 2j); the two differ by (1 - s) / 2 px, 0.25 px at half resolution (~1.4 mm at 1.5 m for fx = 262).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class IntrinsicsError(ValueError):
    """Intrinsics that cannot be used (uncalibrated K, bad size); the text says why."""


@dataclass(frozen=True)
class Intrinsics:
    """fx, fy, cx, cy in pixels of an image `width` x `height` (distortion-free, as registered depth is)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(np.isfinite(v) for v in values):
            raise IntrinsicsError(f"intrinsics must be finite, got fx={self.fx} fy={self.fy} cx={self.cx} cy={self.cy}")
        if self.fx == 0.0 and self.fy == 0.0:
            raise IntrinsicsError("camera is not calibrated (fx = fy = 0)")
        if self.fx <= 0.0 or self.fy <= 0.0:
            raise IntrinsicsError(f"focal length fx={self.fx:g}, fy={self.fy:g}: both must be positive")
        if self.width <= 0 or self.height <= 0:
            raise IntrinsicsError(f"image size must be positive, got {self.width}x{self.height}")

    @classmethod
    def from_k(cls, k: Sequence[float] | np.ndarray, width: int, height: int) -> Intrinsics:
        """From a row-major 3x3 K (CameraInfo.k: 9 numbers, or a [3, 3] array) of a `width` x `height` image."""
        try:
            kk = np.asarray(k, dtype=np.float64)
        except (TypeError, ValueError):  # text, None, ragged sequences
            raise IntrinsicsError(f"K must be 9 numbers, got a {type(k).__name__} that is not numeric") from None
        if kk.size != 9:
            raise IntrinsicsError(f"K must have 9 elements, got {kk.size}")
        kk = kk.reshape(3, 3)
        if kk[2, 2] != 1.0 or kk[1, 0] != 0.0 or kk[2, 0] != 0.0 or kk[2, 1] != 0.0:
            if not np.any(kk):
                raise IntrinsicsError("camera is not calibrated (K is zero)")
            raise IntrinsicsError(f"K is not a pinhole matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]: {kk.tolist()}")
        if kk[0, 1] != 0.0:
            raise IntrinsicsError(f"K has skew {kk[0, 1]}; registered depth is expected to have none")
        return cls(float(kk[0, 0]), float(kk[1, 1]), float(kk[0, 2]), float(kk[1, 2]), int(width), int(height))

    @property
    def k(self) -> np.ndarray:
        """[3, 3] float64 camera matrix (zero skew)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled_to(self, width: int, height: int) -> Intrinsics:
        """The same camera seen by an image of `width` x `height` pixels over the same field of view (centre-exact)."""
        if width <= 0 or height <= 0:
            raise IntrinsicsError(f"image size must be positive, got {width}x{height}")
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5,
                          int(width), int(height))


def source_index(dst_size: int, src_size: int) -> np.ndarray:
    """[dst_size] int64: the source pixel nearest each destination pixel's centre (same field of view).

    Destination pixel j has its centre at (j + 0.5) * src / dst - 0.5 in source pixels; the nearest source pixel is
    floor((j + 0.5) * src / dst) (a centre exactly between two pixels goes to the higher one). Identity when equal.
    """
    idx = np.floor((np.arange(dst_size, dtype=np.float64) + 0.5) * (src_size / dst_size)).astype(np.int64)
    return np.minimum(idx, src_size - 1)


def sample_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """[h, w] bool mask (any resolution, same field of view) -> [height, width] bool, nearest pixel centre."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape == (height, width):
        return mask
    rows, cols = source_index(height, mask.shape[0]), source_index(width, mask.shape[1])
    return mask[rows[:, None], cols[None, :]]
