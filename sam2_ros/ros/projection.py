"""3-D point in a camera's optical frame -> pixel, with the pinhole model of sensor_msgs/CameraInfo (ROS-free math,
plus `clicked_point_pixel`, which applies it to a PointStamped + CameraInfo for the node).

Optical frame convention (REP 103): x right, y down, z forward. RViz's Publish Point gives a 3-D point; the node
projects it with K (and the plumb_bob / rational_polynomial distortion in D, since `image` is normally the raw image).
Points in another frame must first be transformed into the optical frame (tf2, where installed).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sam2_ros.geometry.intrinsics import Intrinsics, IntrinsicsError

DISTORTION_MODELS = ("plumb_bob", "rational_polynomial")


class ProjectionError(ValueError):
    """The point cannot be projected (behind the camera, not finite, bad calibration)."""


def project_point(xyz: Sequence[float], k: Sequence[float], d: Sequence[float] = (),
                  distortion_model: str = "plumb_bob") -> tuple[float, float]:
    """Pixel (u, v) of a 3-D point in the optical frame; K is the row-major 3x3 camera matrix, D its distortion."""
    x, y, z = (float(v) for v in xyz)
    if not np.isfinite([x, y, z]).all():
        raise ProjectionError(f"point ({x}, {y}, {z}) is not finite")
    if z <= 0.0:
        raise ProjectionError(f"point ({x:.6g}, {y:.6g}, {z:.6g}) is not in front of the camera (z <= 0)")
    kk = _camera_matrix(k)
    fx, fy, cx, cy = kk[0, 0], kk[1, 1], kk[0, 2], kk[1, 2]
    a, b = x / z, y / z  # normalised image coordinates
    coeffs = [float(c) for c in d]
    if not np.isfinite(coeffs).all():
        raise ProjectionError(f"camera_info D is not finite: {_short(coeffs)}")
    if any(coeffs):
        if distortion_model not in DISTORTION_MODELS:
            raise ProjectionError(f"distortion model {_short(distortion_model)!r} is not supported "
                                  f"({DISTORTION_MODELS})")
        with np.errstate(all="ignore"):  # huge coefficients overflow: refused just below
            a, b = _distort(a, b, coeffs)
    with np.errstate(all="ignore"):
        u, v = fx * a + kk[0, 1] * b + cx, fy * b + cy
    if not np.isfinite([u, v]).all():
        raise ProjectionError(f"point ({x:.6g}, {y:.6g}, {z:.6g}) projects to a non-finite pixel with this "
                              "camera_info (check its K and D)")
    return float(u), float(v)


def _camera_matrix(k: Sequence[float]) -> np.ndarray:
    """CameraInfo.k (9 numbers, row-major) -> [3, 3]; ProjectionError says what makes it unusable."""
    kk = np.asarray(k, dtype=np.float64)
    if kk.size != 9:
        raise ProjectionError(f"camera_info K must have 9 elements, got {kk.size}")
    kk = kk.reshape(3, 3)
    if not np.isfinite(kk).all():
        raise ProjectionError(f"camera_info K is not finite: {_short(kk.reshape(-1).tolist())}")
    if not kk.any():
        raise ProjectionError("camera_info has no calibration (K is zero)")
    fx, fy = kk[0, 0], kk[1, 1]
    if fx <= 0.0 or fy <= 0.0:
        raise ProjectionError(f"camera_info K has focal length fx={fx:g}, fy={fy:g}: both must be positive")
    return kk


def _short(value: object, limit: int = 200) -> str:
    """str(value), cut to `limit` characters (the values come from outside and end up in log lines)."""
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _distort(a: float, b: float, d: list[float]) -> tuple[float, float]:
    """Brown-Conrady radial + tangential distortion (k1, k2, p1, p2[, k3[, k4, k5, k6]]) as OpenCV defines it."""
    k1, k2, p1, p2, k3, k4, k5, k6 = (d + [0.0] * 8)[:8]
    a, b = np.float64(a), np.float64(b)  # numpy floats overflow to inf (refused by the caller), Python's raise
    r2 = a * a + b * b
    radial = (1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3) / (1 + k4 * r2 + k5 * r2 ** 2 + k6 * r2 ** 3)
    return (a * radial + 2 * p1 * a * b + p2 * (r2 + 2 * a * a),
            b * radial + p1 * (r2 + 2 * b * b) + 2 * p2 * a * b)


def transform_point(xyz: Sequence[float], translation: Sequence[float], quaternion_xyzw: Sequence[float]) -> np.ndarray:
    """Apply a rigid transform (as in geometry_msgs/Transform) to a point: R(q) @ p + t."""
    qx, qy, qz, qw = (float(v) for v in quaternion_xyzw)
    if not np.isfinite([qx, qy, qz, qw, *translation]).all():
        raise ProjectionError("the transform is not finite")
    largest = max(abs(qx), abs(qy), abs(qz), abs(qw))
    if largest == 0.0:
        raise ProjectionError("zero quaternion")
    qx, qy, qz, qw = qx / largest, qy / largest, qz / largest, qw / largest  # so that squaring cannot overflow
    n = np.sqrt(qx * qx + qy * qy + qz * qz + qw * qw)
    qx, qy, qz, qw = qx / n, qy / n, qz / n, qw / n
    rot = np.array([
        [1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qz * qw), 2 * (qx * qz + qy * qw)],
        [2 * (qx * qy + qz * qw), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qx * qw)],
        [2 * (qx * qz - qy * qw), 2 * (qy * qz + qx * qw), 1 - 2 * (qx * qx + qy * qy)]])
    return rot @ np.asarray(xyz, dtype=np.float64) + np.asarray(translation, dtype=np.float64)


def clicked_point_pixel(msg, info, tf_buffer=None, image_hw: tuple[int, int] | None = None) -> tuple[float, float]:
    """A geometry_msgs/PointStamped (RViz's Publish Point) -> pixel (u, v) of the image that `info` (CameraInfo)
    calibrates: into the camera's optical frame through tf2 when the frames differ, then projected; with K scaled
    (Intrinsics.scaled_to: pixel centres, exact for binning) when the image has another resolution than the
    calibration. Raises ProjectionError with the reason."""
    xyz = [msg.point.x, msg.point.y, msg.point.z]
    cam, src = info.header.frame_id, msg.header.frame_id
    if src and cam and src != cam:
        if tf_buffer is None:
            raise ProjectionError(f"the point is in frame {src!r}, the camera in {cam!r}, and tf2 is not installed "
                                  "(publish the point in the camera's optical frame)")
        from rclpy.duration import Duration
        from rclpy.time import Time

        try:
            t = tf_buffer.lookup_transform(cam, src, Time(), timeout=Duration(seconds=0.2)).transform
        except Exception as err:
            raise ProjectionError(f"no transform {src} -> {cam}: {err}") from err
        xyz = transform_point(xyz, [t.translation.x, t.translation.y, t.translation.z],
                              [t.rotation.x, t.rotation.y, t.rotation.z, t.rotation.w])
    k = info.k
    if image_hw is not None and info.width and info.height and (info.height, info.width) != tuple(image_hw):
        try:  # the camera matrix of the image's resolution, by the pixel-centre rule of geometry.Intrinsics
            k = Intrinsics.from_k(info.k, info.width, info.height).scaled_to(image_hw[1], image_hw[0]).k
        except IntrinsicsError as err:
            raise ProjectionError(str(err)) from err
    return project_point(xyz, k, info.d, info.distortion_model)
