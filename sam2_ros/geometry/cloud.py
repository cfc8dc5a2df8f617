"""Labelled point clouds as PointCloud2 bytes, without ROS: x, y, z float32 + label uint32 (PCL's PointXYZL).

The layout is the one `sensor_msgs_py.point_cloud2.create_cloud(header, XYZL fields, points)` writes: unorganised
(height 1), offsets 0/4/8/12, point_step 16, row_step 16 * width, little-endian, the points' bytes back to back. The
node copies a PackedCloud into a sensor_msgs/PointCloud2 (fields as PointField(name, offset, datatype, count)).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sam2_ros.geometry.object_geometry import ObjectGeometry

# sensor_msgs/PointField datatype constants
FLOAT32 = 7
UINT32 = 6

# (name, offset, datatype, count) per field, as sensor_msgs/PointField takes them
XYZL_FIELDS: tuple[tuple[str, int, int, int], ...] = (
    ("x", 0, FLOAT32, 1), ("y", 4, FLOAT32, 1), ("z", 8, FLOAT32, 1), ("label", 12, UINT32, 1))
XYZL_DTYPE = np.dtype({"names": ["x", "y", "z", "label"], "formats": ["<f4", "<f4", "<f4", "<u4"],
                       "offsets": [0, 4, 8, 12], "itemsize": 16})
POINT_STEP = XYZL_DTYPE.itemsize  # 16 bytes


@dataclass(frozen=True)
class PackedCloud:
    """Everything a sensor_msgs/PointCloud2 needs besides its header."""

    fields: tuple[tuple[str, int, int, int], ...]  # (name, offset, datatype, count)
    data: bytes                                    # width * point_step bytes
    width: int                                     # number of points
    height: int = 1                                # unorganised
    point_step: int = POINT_STEP
    row_step: int = 0                              # width * point_step
    is_bigendian: bool = False
    is_dense: bool = True                          # no NaN / inf points (create_cloud itself always writes False)


def xyzl_array(points: np.ndarray, labels: np.ndarray | int) -> np.ndarray:
    """[P, 3] points (m) and [P] (or one) label(s) -> [P] structured array of XYZL_DTYPE.

    The node may also hand this array to sensor_msgs_py's create_cloud (its dtype equals the fields' dtype there).
    """
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be [P, 3], got shape {points.shape}")
    out = np.empty(points.shape[0], dtype=XYZL_DTYPE)
    out["x"], out["y"], out["z"] = points[:, 0], points[:, 1], points[:, 2]
    out["label"] = labels
    return out


def pack_xyzl(points: np.ndarray, labels: np.ndarray | int) -> PackedCloud:
    """[P, 3] points and their labels -> PackedCloud (is_dense says whether every coordinate is finite)."""
    arr = xyzl_array(points, labels)
    dense = bool(np.isfinite(np.asarray(points, dtype=np.float32)).all())
    return PackedCloud(XYZL_FIELDS, arr.tobytes(), int(arr.shape[0]), row_step=POINT_STEP * int(arr.shape[0]),
                       is_dense=dense)


def pack_objects(objects: Sequence[ObjectGeometry]) -> PackedCloud:
    """All objects' points in one cloud, label = object id, objects in the given order."""
    if not objects:
        return pack_xyzl(np.zeros((0, 3), np.float32), 0)
    arr = np.empty(sum(o.points.shape[0] for o in objects), dtype=XYZL_DTYPE)
    start = 0
    for o in objects:
        if not 0 <= o.object_id < 2 ** 32:
            raise ValueError(f"object id {o.object_id} does not fit the uint32 label field")
    for o in objects:  # fill in place: one copy per field, no concatenated temporaries
        end = start + o.points.shape[0]
        part = arr[start:end]
        part["x"], part["y"], part["z"] = o.points[:, 0], o.points[:, 1], o.points[:, 2]
        part["label"] = o.object_id
        start = end
    return PackedCloud(XYZL_FIELDS, arr.tobytes(), int(arr.shape[0]), row_step=POINT_STEP * int(arr.shape[0]),
                       is_dense=True)
