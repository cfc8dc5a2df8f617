"""Property-based fuzzing of the geometry the node applies to outside data (issue 19): pixel projection of RViz points
with a camera_info's K and D (sam2_ros/ros/projection.py), intrinsics and their scaling, depth decoding and
back-projection (sam2_ros/geometry/). Hostile input gives the module's own error (ProjectionError, IntrinsicsError,
DepthError: ValueErrors with a reason) or a correct answer; the properties check what "correct" means (round trips,
pixel-centre scaling, points inside their masks and depth range). Budget: fuzz_util.py."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from fuzz_util import FUZZ_EXAMPLES_SLOW, fuzz, hostile_floats, hostile_text, hostile_values
from sam2_ros.geometry import (DepthError, GeometryParams, Intrinsics, IntrinsicsError, depth_to_metres,
                               extract_objects)
from sam2_ros.geometry.filters import back_project
from sam2_ros.ros.projection import (DISTORTION_MODELS, ProjectionError, clicked_point_pixel, project_point,
                                     transform_point)

finite = st.floats(-1e3, 1e3)
focal = st.floats(1.0, 1e4)
centre = st.floats(-100.0, 2000.0)
small_coeff = st.floats(-0.2, 0.2)


@st.composite
def camera_matrices(draw, skew: bool = True) -> list[float]:
    """A valid pinhole K (positive focal lengths), row-major, with an optional skew."""
    s = draw(st.floats(-5.0, 5.0)) if skew else 0.0
    return [draw(focal), s, draw(centre), 0.0, draw(focal), draw(centre), 0.0, 0.0, 1.0]


hostile_k = st.one_of(camera_matrices(), st.lists(hostile_floats, min_size=9, max_size=9),
                      camera_matrices().flatmap(lambda k: st.tuples(st.integers(0, 8), hostile_floats).map(
                          lambda change: [change[1] if i == change[0] else v for i, v in enumerate(k)])))
hostile_d = st.one_of(st.lists(small_coeff, max_size=8), st.lists(hostile_floats, max_size=8))
hostile_model = st.one_of(st.sampled_from(DISTORTION_MODELS), hostile_text)


@fuzz()
@given(xyz=st.lists(hostile_floats, min_size=3, max_size=3), k=hostile_k, d=hostile_d, model=hostile_model)
@example(xyz=[1e100, 0.0, 1.0], k=[500.0, 0, 320, 0, 480, 240, 0, 0, 1], d=[0.1, 0, 0, 0, 0], model="plumb_bob")
def test_project_point_is_finite_or_refused(xyz, k, d, model):
    try:
        u, v = project_point(xyz, k, d, model)
    except ProjectionError as err:
        assert str(err) and len(str(err)) < 600, "a reason of bounded length"
        return
    assert isinstance(u, float) and isinstance(v, float) and math.isfinite(u) and math.isfinite(v)


@fuzz()
@given(k=camera_matrices(), x=finite, y=finite, z=st.floats(0.01, 100.0))
def test_projection_without_distortion_inverts(k, x, y, z):
    """Back-projecting the pixel at the point's depth gives the point back (K with skew: u = fx a + s b + cx)."""
    u, v = project_point([x, y, z], k, [0.0] * 5)
    assert (u, v) == project_point([x, y, z], k)  # zero D is no distortion
    fx, s, cx, fy, cy = k[0], k[1], k[2], k[4], k[5]
    b = (v - cy) / fy
    a = (u - cx - s * b) / fx
    assert a * z == pytest.approx(x, rel=1e-7, abs=1e-7) and b * z == pytest.approx(y, rel=1e-7, abs=1e-7)


@fuzz()
@given(k=camera_matrices(skew=False), x=st.floats(-2, 2), y=st.floats(-2, 2), z=st.floats(0.5, 10.0),
       radial=st.lists(small_coeff, min_size=2, max_size=2), k3=small_coeff)
def test_radial_distortion_keeps_the_direction_from_the_principal_point(k, x, y, z, radial, k3):
    """Radial-only distortion (p1 = p2 = 0) moves a point along its ray from the optical axis, never across it."""
    try:
        u, v = project_point([x, y, z], k, [radial[0], radial[1], 0.0, 0.0, k3])
    except ProjectionError:
        return
    a, b = (u - k[2]) / k[0], (v - k[5]) / k[4]
    assert a * (y / z) == pytest.approx(b * (x / z), abs=1e-9)


@fuzz()
@given(p=st.lists(finite, min_size=3, max_size=3), t=st.lists(finite, min_size=3, max_size=3),
       q=st.one_of(st.lists(st.floats(-1, 1), min_size=4, max_size=4), st.lists(hostile_floats, min_size=4,
                                                                                 max_size=4)))
def test_transform_is_a_rigid_motion_or_refused(p, t, q):
    try:
        moved = transform_point(p, t, q)
    except ProjectionError:
        return
    assert np.isfinite(moved).all()
    rotated = transform_point(p, [0, 0, 0], q)
    assert np.linalg.norm(rotated) == pytest.approx(np.linalg.norm(p), rel=1e-9, abs=1e-9)
    back = transform_point(rotated, [0, 0, 0], [-q[0], -q[1], -q[2], q[3]])  # the inverse rotation
    np.testing.assert_allclose(back, p, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(moved - rotated, t, rtol=1e-9, atol=1e-9)


def _info(k, d, model: str, width: int, height: int, frame: str = "cam"):
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo(width=width, height=height, distortion_model=model, k=[float(v) for v in k],
                      d=[float(v) for v in d])
    info.header.frame_id = frame
    return info


def _point(xyz, frame: str = "cam"):
    from geometry_msgs.msg import PointStamped

    msg = PointStamped()
    msg.header.frame_id = frame
    msg.point.x, msg.point.y, msg.point.z = (float(v) for v in xyz)
    return msg


@fuzz(FUZZ_EXAMPLES_SLOW)
@given(xyz=st.lists(hostile_floats, min_size=3, max_size=3), k=hostile_k, d=hostile_d, model=hostile_model,
       size=st.tuples(st.integers(0, 5000), st.integers(0, 5000)),
       image=st.one_of(st.none(), st.tuples(st.integers(1, 5000), st.integers(1, 5000))))
def test_clicked_point_messages_give_a_pixel_or_a_reason(xyz, k, d, model, size, image):
    """The node's path for ~/clicked_point with any camera_info and point (same optical frame, no tf)."""
    try:
        u, v = clicked_point_pixel(_point(xyz), _info(k, d, model, *size), None, image)
    except ProjectionError as err:
        assert str(err)
        return
    assert math.isfinite(u) and math.isfinite(v)


@fuzz(FUZZ_EXAMPLES_SLOW)
@given(k=camera_matrices(skew=False), d=st.lists(small_coeff, max_size=5), x=st.floats(-1, 1), y=st.floats(-1, 1),
       z=st.floats(0.5, 5.0), width=st.integers(8, 2000), height=st.integers(8, 2000), factor=st.sampled_from(
           [0.25, 0.5, 2.0, 3.0]))
def test_clicked_point_on_a_resized_image_follows_the_pixel_centre_rule(k, d, x, y, z, width, height, factor):
    """Calibrated at W x H, image at s W x s H: the pixel is u' + 0.5 = s (u + 0.5) (geometry/intrinsics.py)."""
    info = _info(k, d, "plumb_bob", width, height)
    assume(width * factor == int(width * factor) and height * factor == int(height * factor))
    try:
        u, v = clicked_point_pixel(_point([x, y, z]), info, None, (height, width))
    except ProjectionError:
        return
    u2, v2 = clicked_point_pixel(_point([x, y, z]), info, None, (int(height * factor), int(width * factor)))
    assert u2 + 0.5 == pytest.approx(factor * (u + 0.5), rel=1e-9, abs=1e-6)
    assert v2 + 0.5 == pytest.approx(factor * (v + 0.5), rel=1e-9, abs=1e-6)


@fuzz()
@given(k=st.one_of(hostile_k, hostile_values(2, 4)), width=st.integers(-5, 10_000), height=st.integers(-5, 10_000))
def test_intrinsics_from_any_k_are_valid_or_refused(k, width, height):
    try:
        i = Intrinsics.from_k(k, width, height)
    except IntrinsicsError as err:
        assert str(err) and len(str(err)) < 1000
        return
    assert all(math.isfinite(v) for v in (i.fx, i.fy, i.cx, i.cy)) and i.fx > 0 and i.fy > 0
    assert i.width > 0 and i.height > 0


@fuzz()
@given(k=camera_matrices(skew=False), width=st.integers(1, 4000), height=st.integers(1, 4000),
       width2=st.integers(1, 4000), height2=st.integers(1, 4000), u=st.floats(-0.5, 1.0), v=st.floats(-0.5, 1.0))
def test_scaled_intrinsics_see_the_same_rays(k, width, height, width2, height2, u, v):
    """Scaling by the pixel-centre rule keeps the ray of every point of the field of view; scaling back is exact."""
    a = Intrinsics.from_k(k, width, height)
    b = a.scaled_to(width2, height2)
    back = b.scaled_to(width, height)
    for name in ("fx", "fy", "cx", "cy"):
        assert getattr(back, name) == pytest.approx(getattr(a, name), rel=1e-9, abs=1e-9)
    ua, va = u * width - 0.5, v * height - 0.5          # the same place of the field of view in both images
    ub, vb = u * width2 - 0.5, v * height2 - 0.5
    assert (ua - a.cx) / a.fx == pytest.approx((ub - b.cx) / b.fx, rel=1e-9, abs=1e-9)
    assert (va - a.cy) / a.fy == pytest.approx((vb - b.cy) / b.fy, rel=1e-9, abs=1e-9)


@fuzz()
@given(k=camera_matrices(skew=False), u=st.lists(st.floats(0, 640), min_size=1, max_size=20),
       z=st.floats(0.05, 50.0))
def test_back_projection_projects_back_to_its_pixel(k, u, z):
    i = Intrinsics.from_k(k, 640, 480)
    uu = np.array(u, np.float32)
    vv = uu[::-1].copy() * 0.75
    points = back_project(uu, vv, np.full(uu.shape, z, np.float32), i)
    assert points.shape == (len(u), 3) and points.dtype == np.float32
    for p, pu, pv in zip(points.astype(np.float64), uu, vv):
        pu2, pv2 = project_point(p, i.k)
        assert pu2 == pytest.approx(float(pu), rel=1e-4, abs=1e-2) and pv2 == pytest.approx(float(pv), rel=1e-4,
                                                                                              abs=1e-2)


@fuzz()
@given(arr=hostile_values(3, 5), encoding=st.one_of(st.sampled_from(["16UC1", "mono16", "32FC1"]), hostile_text))
def test_depth_decoding_gives_metres_or_a_reason(arr, encoding):
    try:
        metres = depth_to_metres(arr, encoding)
    except DepthError as err:
        assert str(err)
        return
    raw = np.asarray(arr)
    raw = raw[:, :, 0] if raw.ndim == 3 else raw
    assert metres.dtype == np.float32 and metres.shape == raw.shape
    valid = np.isfinite(metres)
    assert (metres[valid] > 0).all(), "every reading kept is a positive distance; the rest is NaN"
    if encoding == "32FC1":
        np.testing.assert_array_equal(valid, (raw > 0) & np.isfinite(raw))
        np.testing.assert_array_equal(metres[valid], raw[valid])
    else:
        np.testing.assert_array_equal(valid, raw != 0)
        np.testing.assert_allclose(metres[valid], raw[valid].astype(np.float64) * 0.001, rtol=1e-6)


@st.composite
def depth_scenes(draw):
    """A small depth image (metres, with NaN / inf / negative / huge readings), masks, intrinsics and parameters."""
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    values = st.one_of(st.floats(0.0, 20.0), st.sampled_from([np.nan, np.inf, -np.inf, -1.0, 0.0, 1e30]))
    depth = np.array(draw(st.lists(values, min_size=h * w, max_size=h * w)), np.float32).reshape(h, w)
    n = draw(st.integers(0, 3))
    mh, mw = draw(st.sampled_from([(h, w), (2 * h, 2 * w), (max(1, h // 2), max(1, w // 2))]))
    masks = np.array(draw(st.lists(st.booleans(), min_size=n * mh * mw, max_size=n * mh * mw)), bool
                     ).reshape(n, mh, mw)
    k = draw(camera_matrices(skew=False))
    lo = draw(st.floats(0.0, 5.0))
    params = GeometryParams(depth_min=lo, depth_max=lo + draw(st.floats(0.01, 20.0)),
                            depth_mask_erosion=draw(st.integers(0, 2)), depth_outlier_k=draw(st.floats(0.0, 5.0)),
                            points_voxel=draw(st.sampled_from([0.0, 0.05, 1.0])))
    return depth, masks, Intrinsics.from_k(k, mw, mh), params


@fuzz(FUZZ_EXAMPLES_SLOW)
@given(scene=depth_scenes())
def test_object_points_lie_in_their_mask_and_depth_range(scene):
    """Every 3-D point of an object is finite, within depth_min..depth_max, and projects into the object's mask;
    its box holds every point and the centroid."""
    depth, masks, intrinsics, params = scene
    ids = list(range(1, len(masks) + 1))
    objects = extract_objects(masks, ids, depth, intrinsics, params)
    assert [o.object_id for o in objects] == sorted(o.object_id for o in objects)
    at_depth = intrinsics.scaled_to(depth.shape[1], depth.shape[0])
    for o in objects:
        pts = o.points.astype(np.float64)
        assert np.isfinite(pts).all() and pts.shape[1] == 3 and o.num_pixels > 0
        lo, hi = o.box_center - o.box_size / 2, o.box_center + o.box_size / 2
        assert (pts >= lo - 1e-5).all() and (pts <= hi + 1e-5).all() and (o.box_size >= 0).all()
        assert (o.centroid >= lo - 1e-5).all() and (o.centroid <= hi + 1e-5).all()
        if params.points_voxel:
            continue  # voxel centroids need not sit on a pixel
        assert (pts[:, 2] >= params.depth_min - 1e-6).all() and (pts[:, 2] <= params.depth_max + 1e-6).all()
        mask = masks[o.object_id - 1]
        for x, y, z in pts:
            u = int(round(x * at_depth.fx / z + at_depth.cx))
            v = int(round(y * at_depth.fy / z + at_depth.cy))
            assert 0 <= u < depth.shape[1] and 0 <= v < depth.shape[0]
            mu = min(int((u + 0.5) * mask.shape[1] / depth.shape[1]), mask.shape[1] - 1)
            mv = min(int((v + 0.5) * mask.shape[0] / depth.shape[0]), mask.shape[0] - 1)
            assert mask[mv, mu], "a point comes from a depth pixel inside its object's mask"
            assert depth[v, u] == pytest.approx(z, rel=1e-5)
