"""~/clicked_point projection math: pinhole K, plumb_bob / rational distortion, rigid transforms (ROS-free), and
clicked_point_pixel on real PointStamped / CameraInfo / TransformStamped messages with a tf2-shaped buffer."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sam2_ros.ros.projection import ProjectionError, project_point, transform_point

K = [500.0, 0.0, 320.0, 0.0, 480.0, 240.0, 0.0, 0.0, 1.0]


def test_pinhole_projection():
    assert project_point([0, 0, 2], K) == pytest.approx((320.0, 240.0))
    u, v = project_point([0.2, -0.1, 2.0], K)
    print(f"projected ({u:.4f}, {v:.4f})")
    assert (u, v) == pytest.approx((320 + 500 * 0.1, 240 - 480 * 0.05))
    # scale invariance along the ray
    assert project_point([0.4, -0.2, 4.0], K) == pytest.approx((u, v))
    # zero distortion coefficients change nothing, whatever the model name
    assert project_point([0.2, -0.1, 2.0], K, [0.0] * 5, "plumb_bob") == pytest.approx((u, v))


def _opencv_distort(a, b, d):
    """OpenCV's documented projectPoints distortion, written independently for the check."""
    k1, k2, p1, p2, k3 = d[:5]
    k4, k5, k6 = (list(d[5:8]) + [0, 0, 0])[:3]
    r2 = a * a + b * b
    c = (1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 ** 3) / (1 + k4 * r2 + k5 * r2 * r2 + k6 * r2 ** 3)
    return a * c + 2 * p1 * a * b + p2 * (r2 + 2 * a * a), b * c + p1 * (r2 + 2 * b * b) + 2 * p2 * a * b


@pytest.mark.parametrize("model, d", [("plumb_bob", [-0.28, 0.07, 0.001, -0.0005, 0.01]),
                                      ("rational_polynomial", [0.3, -0.05, 0.002, 0.001, 0.003, 0.02, -0.01, 0.004])])
def test_distortion(model, d):
    xyz = [0.3, 0.25, 1.5]
    a, b = _opencv_distort(0.2, 0.25 / 1.5, d)
    expected = (500 * a + 320, 480 * b + 240)
    got = project_point(xyz, K, d, model)
    print(f"{model}: got {got}, expected {expected}, diff {np.subtract(got, expected)}")
    assert got == pytest.approx(expected, abs=1e-9)
    assert abs(got[0] - project_point(xyz, K)[0]) > 1.0, "distortion had an effect"


@pytest.mark.parametrize("xyz, text", [([0, 0, 0], "not in front"), ([0.1, 0.1, -1], "not in front"),
                                       ([math.nan, 0, 1], "not finite"), ([0, math.inf, 1], "not finite")])
def test_unprojectable_points(xyz, text):
    with pytest.raises(ProjectionError, match=text):
        project_point(xyz, K)


def test_uncalibrated_and_unknown_model():
    with pytest.raises(ProjectionError, match="no calibration"):
        project_point([0, 0, 1], [0.0] * 9)
    with pytest.raises(ProjectionError, match="not supported"):
        project_point([0, 0, 1], K, [0.1, 0, 0, 0, 0], "equidistant")


@pytest.mark.parametrize("k, d, text", [
    ([-500.0, 0, 320, 0, 480, 240, 0, 0, 1], (), r"focal length fx=-500, fy=480: both must be positive"),
    ([500.0, 0, 320, 0, -480, 240, 0, 0, 1], (), r"fx=500, fy=-480"),
    ([0.0, 0, 320, 0, 480, 240, 0, 0, 1], (), r"fx=0, fy=480"),
    ([500.0, 0, math.nan, 0, 480, 240, 0, 0, 1], (), "K is not finite"),
    ([500.0, 0, 320, 0, math.inf, 240, 0, 0, 1], (), "K is not finite"),
    (K, [0.1, math.nan, 0, 0, 0], "D is not finite"),
    (K, [1e308, 1e308, 0, 0, 0], "non-finite pixel"),
])
def test_bad_calibration_says_what_is_wrong(k, d, text):
    """Issue 19: a negative focal length was reported as "K is zero"; a NaN in K or D gave a NaN pixel."""
    with pytest.raises(ProjectionError, match=text) as err:
        project_point([0.1, 0.2, 1.0], k, d)
    assert "K is zero" not in str(err.value)


def test_transform_point():
    p = [1.0, 2.0, 3.0]
    np.testing.assert_allclose(transform_point(p, [0, 0, 0], [0, 0, 0, 1]), p)
    np.testing.assert_allclose(transform_point(p, [1, -1, 0.5], [0, 0, 0, 1]), [2, 1, 3.5])
    s = math.sqrt(0.5)  # 90 degrees about z: x -> y, y -> -x
    np.testing.assert_allclose(transform_point(p, [0, 0, 0], [0, 0, s, s]), [-2, 1, 3], atol=1e-12)
    # a body frame (x forward, z up) -> optical frame (z forward, x right, y down): the standard REP 103 rotation
    q_optical_from_body = [0.5, -0.5, 0.5, 0.5]  # inverse of the usual rpy (-pi/2, 0, -pi/2)
    forward = transform_point([2.0, 0.0, 0.0], [0, 0, 0], q_optical_from_body)
    left = transform_point([0.0, 1.0, 0.0], [0, 0, 0], q_optical_from_body)
    up = transform_point([0.0, 0.0, 1.0], [0, 0, 0], q_optical_from_body)
    print("forward", forward, "left", left, "up", up)
    np.testing.assert_allclose(forward, [0, 0, 2], atol=1e-12)
    np.testing.assert_allclose(left, [-1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(up, [0, -1, 0], atol=1e-12)
    # unnormalised quaternions are normalised
    np.testing.assert_allclose(transform_point(p, [0, 0, 0], [0, 0, 2 * s, 2 * s]), [-2, 1, 3], atol=1e-12)
    with pytest.raises(ProjectionError):
        transform_point(p, [0, 0, 0], [0, 0, 0, 0])


class _Buffer:
    """What tf2_ros.Buffer answers (tf2 is not on PyPI): lookup_transform(target, source, time, timeout) -> a real
    geometry_msgs/TransformStamped, or an exception when no transform is known."""

    def __init__(self, transform=None):
        self.transform, self.asked = transform, []

    def lookup_transform(self, target, source, time, timeout=None):
        self.asked.append((target, source))
        if self.transform is None:
            raise LookupError(f'"{target}" passed to lookupTransform argument target_frame does not exist')
        return self.transform


def _messages(point_frame: str):
    from geometry_msgs.msg import PointStamped, TransformStamped
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo(width=640, height=480, k=K, distortion_model="plumb_bob", d=[0.0] * 5)
    info.header.frame_id = "camera_optical"
    point = PointStamped()
    point.header.frame_id = point_frame
    point.point.x, point.point.y, point.point.z = 2.0, -0.2, 0.1  # base_link: 2 m ahead, 0.2 m right, 0.1 m up
    tf = TransformStamped()  # optical from body (REP 103, as in test_transform_point), camera 0.1 m off-axis
    r = tf.transform.rotation
    r.x, r.y, r.z, r.w = 0.5, -0.5, 0.5, 0.5
    tf.transform.translation.x = 0.1
    return info, point, tf


def test_clicked_point_through_a_transform():
    from sam2_ros.ros.projection import clicked_point_pixel

    info, point, tf = _messages("base_link")
    buffer = _Buffer(tf)
    u, v = clicked_point_pixel(point, info, buffer)
    assert buffer.asked == [("camera_optical", "base_link")]  # target = the camera, source = the point's frame
    # optical point: rotated (0.2, -0.1, 2.0), then shifted to (0.3, -0.1, 2.0)
    assert (u, v) == pytest.approx((320 + 500 * 0.15, 240 - 480 * 0.05))
    # a 2x-binned image (320 x 240): pixel centres scale, (u + 0.5) / 2 - 0.5 (Intrinsics.scaled_to's rule)
    assert clicked_point_pixel(point, info, buffer, image_hw=(240, 320)) == pytest.approx((u / 2 - 0.25,
                                                                                            v / 2 - 0.25))
    assert clicked_point_pixel(point, info, buffer, image_hw=(480, 640)) == pytest.approx((u, v))  # same size


def test_clicked_point_frames_without_tf():
    from sam2_ros.ros.projection import clicked_point_pixel

    info, point, _ = _messages("base_link")
    with pytest.raises(ProjectionError, match="tf2 is not installed"):
        clicked_point_pixel(point, info, None)
    with pytest.raises(ProjectionError, match="no transform base_link -> camera_optical"):
        clicked_point_pixel(point, info, _Buffer(None))
    info, point, _ = _messages("camera_optical")  # same frame: no lookup needed, the point is used as is
    point.point.x, point.point.y, point.point.z = 0.2, -0.1, 2.0
    assert clicked_point_pixel(point, info, None) == pytest.approx((370.0, 216.0))
