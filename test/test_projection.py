"""~/clicked_point projection math: pinhole K, plumb_bob / rational distortion, rigid transforms (ROS-free)."""
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
