"""The per-object depth filters and back-projection, on plain arrays: erosion, MAD outliers, voxel grid, pinhole.

Each is vectorised numpy and works on one object's pixels (or its mask's bounding-box crop), never the whole image.
"""
from __future__ import annotations

import numpy as np

from sam2_ros.geometry.intrinsics import Intrinsics

MAD_TO_SIGMA = 1.4826  # MAD * 1.4826 estimates a normal distribution's standard deviation
MAD_FLOOR = 0.001      # m: the MAD never counts as less than 16UC1's step (a flat, quantised surface has MAD 0)


def erode(mask: np.ndarray, radius: int) -> np.ndarray:
    """[H, W] bool -> [H, W] bool: a pixel stays when every pixel within `radius` px (a (2r+1)^2 square) is set.

    Outside the array counts as a copy of the nearest edge pixel: an object cut by the image border continues beyond
    it, so the border itself is not an object edge (depth bleeds at object edges only). Separable, in place on one
    copy: 2r ANDs of shifted slices per axis, no padding.
    """
    out = np.array(mask, dtype=bool, copy=True)
    if radius <= 0:
        return out
    for axis in (1, 0):
        src = out.copy() if axis == 0 else np.array(mask, dtype=bool, copy=True)
        n = out.shape[axis]
        for d in range(1, radius + 1):
            k = min(d, n)
            if axis == 1:
                out[:, :n - k] &= src[:, k:]      # neighbour d to the right ...
                out[:, n - k:] &= src[:, n - 1:]  # ... or the replicated last column
                out[:, k:] &= src[:, :n - k]      # neighbour d to the left ...
                out[:, :k] &= src[:, :1]          # ... or the replicated first column
            else:
                out[:n - k] &= src[k:]
                out[n - k:] &= src[n - 1:]
                out[k:] &= src[:n - k]
                out[:k] &= src[:1]
    return out


def mad_inliers(z: np.ndarray, k: float) -> np.ndarray:
    """[P] finite depths -> [P] bool, True where |z - median| <= k * 1.4826 * max(MAD, 1 mm): the scaled MAD, so k
    counts standard deviations of Gaussian noise. k <= 0 keeps everything. Robust while fewer than half the pixels
    are outliers (background seen through a mask edge, speckles). Medians are the middle order statistic (the upper
    one for an even count): np.partition, ~8x faster than np.median here.
    """
    if k <= 0.0 or z.size == 0:
        return np.ones(z.shape, dtype=bool)
    middle = z.size // 2
    median = np.partition(z, middle)[middle]
    deviation = np.abs(z - median)
    mad = max(float(np.partition(deviation, middle)[middle]), MAD_FLOOR)
    return deviation <= np.float32(k * MAD_TO_SIGMA * mad)


def back_project(u: np.ndarray, v: np.ndarray, z: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Pixels (u right, v down; centres at integers) with depth z (m) -> [P, 3] float32 points in the optical frame.

    X = (u - cx) z / fx, Y = (v - cy) z / fy, Z = z (REP 103 optical frame: x right, y down, z forward). The result
    is column-major (each coordinate contiguous), so per-coordinate reductions and packing read it fast.
    """
    z = np.asarray(z, dtype=np.float32)
    out = np.empty((3, z.shape[0]), dtype=np.float32)      # [3, P]
    np.subtract(u, np.float32(intrinsics.cx), out=out[0], casting="unsafe")
    out[0] *= np.float32(1.0 / intrinsics.fx)
    out[0] *= z
    np.subtract(v, np.float32(intrinsics.cy), out=out[1], casting="unsafe")
    out[1] *= np.float32(1.0 / intrinsics.fy)
    out[1] *= z
    out[2] = z
    return out.T                                            # [P, 3] view


def voxel_downsample(points: np.ndarray, voxel: float) -> np.ndarray:
    """[P, 3] -> [V, 3] float32: one point per occupied `voxel`-metre cube, the mean of the points in it.

    Cubes are aligned to the optical frame's origin (floor(p / voxel)); output is ordered by cube (x, then y, then z).
    A dense count over the object's cube range when it is small (an object is compact), np.unique otherwise.
    """
    if not voxel > 0.0:
        raise ValueError(f"voxel size must be > 0, got {voxel}")
    points = np.asarray(points, dtype=np.float32)
    if points.shape[0] == 0:
        return points.reshape(0, 3)
    by_axis = np.ascontiguousarray(points.T)                # [3, P] (a no-op for back_project's output)
    cells = np.floor(by_axis * np.float32(1.0 / voxel)).astype(np.int64)          # [3, P]
    cells -= cells.min(axis=1, keepdims=True)
    dims = [int(d) + 1 for d in cells.max(axis=1)]
    total = dims[0] * dims[1] * dims[2]                     # Python int: cannot overflow
    if total >= 2 ** 62:
        raise ValueError(f"voxel {voxel} m is too small for points spanning {dims} cells")
    keys = cells[0] * (dims[1] * dims[2])                   # [P] cube number, x-major
    keys += cells[1] * dims[2]
    keys += cells[2]
    if total <= 8 * points.shape[0] + 65536:                # compact: count densely, number the occupied cubes
        counts = np.bincount(keys, minlength=total)
        occupied = counts > 0
        inverse = (np.cumsum(occupied) - 1)[keys]
        counts = counts[occupied]
    else:
        _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    out = np.empty((3, counts.shape[0]), dtype=np.float32)  # [3, V]
    for a in range(3):
        out[a] = np.bincount(inverse, weights=by_axis[a], minlength=counts.shape[0]) / counts
    return out.T                                            # [V, 3], columns contiguous like back_project's
