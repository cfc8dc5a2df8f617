"""Labelled point-cloud bytes (x, y, z float32 + label uint32, PCL PointXYZL): parsed back equal to the points, and
byte-for-byte what sensor_msgs_py.point_cloud2.create_cloud makes, where sensor_msgs_py is installed (a ROS install;
it is not on PyPI, so the venv has none)."""
from __future__ import annotations

import numpy as np
import pytest

from sam2_ros.geometry import XYZL_DTYPE, XYZL_FIELDS, ObjectGeometry, pack_objects, pack_xyzl, xyzl_array

READ_DTYPE = np.dtype({"names": ["x", "y", "z", "label"], "formats": ["<f4", "<f4", "<f4", "<u4"],
                       "offsets": [0, 4, 8, 12], "itemsize": 16})  # written here from the field table, not imported


def _objects():
    rng = np.random.default_rng(0)
    out = []
    for object_id, n in ((3, 5), (1, 0), (12, 7), (70000, 2)):
        pts = rng.uniform(-2, 4, (n, 3)).astype(np.float32)
        c = pts.mean(0) if n else np.zeros(3)
        out.append(ObjectGeometry(object_id, pts, c, c, np.zeros(3), n))
    return out


def test_layout_is_pointxyzl():
    assert XYZL_FIELDS == (("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1), ("label", 12, 6, 1))
    assert XYZL_DTYPE == READ_DTYPE and XYZL_DTYPE.itemsize == 16


def test_packed_objects_parse_back():
    objects = _objects()
    cloud = pack_objects(objects)
    n = sum(o.points.shape[0] for o in objects)
    assert (cloud.width, cloud.height, cloud.point_step, cloud.row_step) == (n, 1, 16, 16 * n)
    assert len(cloud.data) == 16 * n and isinstance(cloud.data, bytes)
    assert cloud.is_bigendian is False and cloud.is_dense is True
    parsed = np.frombuffer(cloud.data, dtype=READ_DTYPE)
    expected_xyz = np.concatenate([o.points for o in objects])
    expected_label = np.concatenate([np.full(o.points.shape[0], o.object_id) for o in objects])
    np.testing.assert_array_equal(np.stack([parsed["x"], parsed["y"], parsed["z"]], 1), expected_xyz)
    np.testing.assert_array_equal(parsed["label"], expected_label)
    # the same bytes from the per-array builder
    assert pack_xyzl(expected_xyz, expected_label).data == cloud.data
    # little-endian on the wire, whatever the machine: the first x read by hand
    assert np.frombuffer(cloud.data[:4], "<f4")[0] == expected_xyz[0, 0]


def test_empty_cloud_and_bad_input():
    empty = pack_objects([])
    assert (empty.width, empty.row_step, empty.data) == (0, 0, b"")
    assert pack_xyzl(np.array([[np.nan, 0, 1]], np.float32), 1).is_dense is False
    with pytest.raises(ValueError):
        xyzl_array(np.zeros((4, 2)), 1)
    with pytest.raises(ValueError, match="uint32"):
        pack_objects([ObjectGeometry(-1, np.zeros((1, 3), np.float32), np.zeros(3), np.zeros(3), np.zeros(3), 1)])


def test_bytes_equal_sensor_msgs_py_create_cloud():
    point_cloud2 = pytest.importorskip(
        "sensor_msgs_py.point_cloud2",
        reason="sensor_msgs_py is not importable (it ships with ROS installs, not on PyPI): nothing to compare with")
    from sensor_msgs.msg import PointField
    from std_msgs.msg import Header

    objects = _objects()
    ours = pack_objects(objects)
    fields = [PointField(name=n, offset=o, datatype=d, count=c) for n, o, d, c in XYZL_FIELDS]
    rows = [(float(p[0]), float(p[1]), float(p[2]), o.object_id) for o in objects for p in o.points]
    theirs = point_cloud2.create_cloud(Header(frame_id="cam"), fields, rows)            # Python tuples path
    assert bytes(theirs.data) == ours.data
    assert (theirs.width, theirs.height, theirs.point_step, theirs.row_step) == (
        ours.width, ours.height, ours.point_step, ours.row_step)
    assert bool(theirs.is_bigendian) == ours.is_bigendian
    assert [(f.name, f.offset, f.datatype, f.count) for f in theirs.fields] == list(ours.fields)
    # the structured-array path (what the node may hand to create_cloud) agrees too
    arr = np.concatenate([xyzl_array(o.points, o.object_id) for o in objects])
    assert bytes(point_cloud2.create_cloud(Header(), fields, arr).data) == ours.data
    # and sensor_msgs_py reads our cloud back as the same points
    back = point_cloud2.read_points(theirs)
    np.testing.assert_array_equal(back["label"], np.frombuffer(ours.data, READ_DTYPE)["label"])
