"""Depth arrays -> metres (REP 118: 16UC1 mm / 32FC1 m and their invalid values), intrinsics from K and their scaling
to a depth image of another resolution (pixel-centre convention), and masks sampled at depth resolution."""
from __future__ import annotations

import numpy as np
import pytest

from sam2_ros.geometry import (DepthError, Intrinsics, IntrinsicsError, depth_to_metres, sample_mask,
                               source_index)


def test_16uc1_millimetres_zero_invalid():
    raw = np.array([[0, 1, 1500], [65535, 999, 0]], dtype=np.uint16)
    m = depth_to_metres(raw, "16UC1")
    assert m.dtype == np.float32 and m.shape == (2, 3)
    np.testing.assert_array_equal(np.isnan(m), [[True, False, False], [False, False, True]])
    np.testing.assert_allclose(m[~np.isnan(m)], [0.001, 1.5, 65.535, 0.999], rtol=1e-6)
    assert raw[0, 1] == 1  # input untouched


def test_16uc1_big_endian_view_and_channel_axis():
    """The node's decoder hands a [H, W, 1] view, big-endian when the message says so: values, not bytes, count."""
    values = np.array([[1000, 0], [2500, 7]], dtype=np.uint16)
    big = values.astype(">u2").reshape(2, 2, 1)
    np.testing.assert_array_equal(depth_to_metres(big, "16UC1"), depth_to_metres(values, "16UC1"))
    np.testing.assert_array_equal(depth_to_metres(values, "mono16"), depth_to_metres(values, "16UC1"))


def test_32fc1_metres_every_invalid_kind():
    raw = np.array([[1.25, np.nan, 0.0, -0.0], [np.inf, -np.inf, -2.0, 3.5e-3]], dtype=np.float32)
    m = depth_to_metres(raw, "32FC1")
    np.testing.assert_array_equal(np.isnan(m), [[False, True, True, True], [True, True, True, False]])
    assert m[0, 0] == np.float32(1.25) and m[1, 3] == np.float32(3.5e-3)
    assert np.isinf(raw[1, 0])  # input untouched


@pytest.mark.parametrize("arr, encoding, text", [
    (np.zeros((2, 2), np.uint16), "32FC1", "must be float32"),
    (np.zeros((2, 2), np.float32), "16UC1", "must be uint16"),
    (np.zeros((2, 2), np.float64), "32FC1", "must be float32"),
    (np.zeros((2, 2), np.uint16), "rgb8", "unsupported depth encoding"),
    (np.zeros((2, 2, 3), np.uint16), "16UC1", "shape"),
    (np.zeros(4, np.uint16), "16UC1", "shape"),
])
def test_bad_depth_is_a_clear_error(arr, encoding, text):
    with pytest.raises(DepthError, match=text):
        depth_to_metres(arr, encoding)


def test_intrinsics_from_k_both_forms():
    flat = [525.0, 0.0, 319.5, 0.0, 520.0, 239.5, 0.0, 0.0, 1.0]
    a = Intrinsics.from_k(flat, 640, 480)
    b = Intrinsics.from_k(np.array(flat).reshape(3, 3), 640, 480)
    assert a == b == Intrinsics(525.0, 520.0, 319.5, 239.5, 640, 480)
    np.testing.assert_array_equal(a.k, np.array(flat).reshape(3, 3))


@pytest.mark.parametrize("k, text", [
    ([0.0] * 9, "not calibrated"),
    ([525, 0, 320, 0, 525, 240, 0, 0, 0], "not a pinhole"),
    ([525, 1.5, 320, 0, 525, 240, 0, 0, 1], "skew"),
    ([-525, 0, 320, 0, 525, 240, 0, 0, 1], "focal length fx=-525, fy=525: both must be positive"),
    ([525, 0, 320, 0, 0, 240, 0, 0, 1], "focal length fx=525, fy=0: both must be positive"),
    ([525, 0, np.nan, 0, 525, 240, 0, 0, 1], "finite"),
    ([525, 0, 320, 0, 525, 240], "9 elements"),
])
def test_bad_k_is_a_clear_error(k, text):
    with pytest.raises(IntrinsicsError, match=text):
        Intrinsics.from_k(k, 640, 480)


def test_scaling_uses_pixel_centres():
    """Half resolution: fx halves, and the principal point follows the pixel-centre convention
    (cx + 0.5) * s - 0.5, so an ideal centred camera stays centred: 319.5 of 640 -> 159.5 of 320 (not 159.75)."""
    k = Intrinsics(525.0, 520.0, 319.5, 239.5, 640, 480)
    half = k.scaled_to(320, 240)
    assert (half.fx, half.fy, half.cx, half.cy) == (262.5, 260.0, 159.5, 119.5)
    assert (half.width, half.height) == (320, 240)
    assert k.scaled_to(640, 480) is k
    odd = Intrinsics(600.0, 600.0, 300.0, 200.0, 640, 480).scaled_to(424, 240)   # non-integer factors per axis
    assert odd.fx == pytest.approx(600 * 424 / 640) and odd.fy == pytest.approx(300.0)
    assert odd.cx == pytest.approx(300.5 * 424 / 640 - 0.5) and odd.cy == pytest.approx(100.25 - 0.5)
    # Every 3-D point projects to the same place of the field of view in both images (u + 0.5 scales).
    rng = np.random.default_rng(0)
    pts = rng.uniform([-1, -1, 1], [1, 1, 4], (50, 3))
    u_full = k.fx * pts[:, 0] / pts[:, 2] + k.cx
    u_half = half.fx * pts[:, 0] / pts[:, 2] + half.cx
    np.testing.assert_allclose(u_half + 0.5, (u_full + 0.5) * 0.5, atol=1e-9)
    with pytest.raises(IntrinsicsError):
        k.scaled_to(0, 240)


def test_source_index_is_nearest_pixel_centre():
    # 2x down: depth pixel j's centre is colour 2j + 0.5, exactly between 2j and 2j + 1: the higher one is taken
    np.testing.assert_array_equal(source_index(4, 8), [1, 3, 5, 7])
    # 2x up: destination centres at 0.25, 0.75, ... of the source
    np.testing.assert_array_equal(source_index(8, 4), [0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(source_index(5, 5), np.arange(5))
    # 3 -> 2: centres at 0.25 and 1.75 source px -> nearest pixels 0 and 2 (floor(0.75), floor(2.25))
    np.testing.assert_array_equal(source_index(2, 3), [0, 2])


def test_sample_mask_to_depth_resolution():
    mask = np.zeros((6, 8), bool)
    mask[1:3, 2:6] = True      # rows 1-2, cols 2-5
    half = sample_mask(mask, 3, 4)
    # depth (r, c) reads colour (2r + 1, 2c + 1)
    np.testing.assert_array_equal(half, mask[1::2, 1::2])
    assert sample_mask(mask, 6, 8) is mask
    up = sample_mask(mask, 12, 16)
    np.testing.assert_array_equal(up, np.repeat(np.repeat(mask, 2, axis=0), 2, axis=1))
