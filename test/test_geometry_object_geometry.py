"""Per-object geometry on arrays: back-projection against hand-computed points, erosion, depth range, MAD outliers,
voxel grid, invalid depth, empty masks, depth at half the colour resolution, centroid and box."""
from __future__ import annotations

import numpy as np
import pytest

from sam2_ros.geometry import (GeometryParams, Intrinsics, back_project, depth_to_metres, erode, extract_object,
                               extract_objects, mad_inliers, voxel_downsample)
from sam2_ros.geometry.filters import MAD_TO_SIGMA

K = Intrinsics(fx=500.0, fy=400.0, cx=320.0, cy=240.0, width=640, height=480)
RAW = GeometryParams(depth_mask_erosion=0, depth_outlier_k=0.0)  # no filter but the range


def _image(value=np.nan):
    return np.full((480, 640), value, dtype=np.float32)


def test_back_projection_hand_computed():
    u = np.array([320, 420, 220, 0], dtype=np.float64)
    v = np.array([240, 140, 340, 479], dtype=np.float64)
    z = np.array([1.0, 2.0, 0.5, 4.0], dtype=np.float32)
    pts = back_project(u, v, z, K)
    expected = [[0.0, 0.0, 1.0],
                [100 * 2 / 500, -100 * 2 / 400, 2.0],     # (0.4, -0.5, 2)
                [-100 * 0.5 / 500, 100 * 0.5 / 400, 0.5],  # (-0.1, 0.125, 0.5)
                [-320 * 4 / 500, 239 * 4 / 400, 4.0]]      # (-2.56, 2.39, 4)
    assert pts.shape == (4, 3) and pts.dtype == np.float32
    np.testing.assert_allclose(pts, expected, atol=1e-6)


def test_extract_matches_hand_points_and_box():
    depth = _image()
    mask = np.zeros((480, 640), bool)
    for (u, v, z) in [(420, 140, 2.0), (220, 340, 0.5), (320, 240, 1.0)]:
        depth[v, u] = z
        mask[v, u] = True
    g = extract_object(mask, depth, K, RAW, object_id=7)
    assert g.object_id == 7 and g.num_pixels == 3
    # row-major pixel order: (420,140), (320,240), (220,340)
    np.testing.assert_allclose(g.points, [[0.4, -0.5, 2.0], [0.0, 0.0, 1.0], [-0.1, 0.125, 0.5]], atol=1e-6)
    np.testing.assert_allclose(g.centroid, [0.3 / 3, -0.375 / 3, 3.5 / 3], atol=1e-6)
    np.testing.assert_allclose(g.box_center, [0.15, -0.1875, 1.25], atol=1e-6)
    np.testing.assert_allclose(g.box_size, [0.5, 0.625, 1.5], atol=1e-6)


def test_erode_square_and_image_border():
    m = np.zeros((9, 9), bool)
    m[1:8, 1:8] = True
    np.testing.assert_array_equal(np.argwhere(erode(m, 2)).min(0), [3, 3])
    np.testing.assert_array_equal(np.argwhere(erode(m, 2)).max(0), [5, 5])
    assert erode(m, 4).sum() == 0
    np.testing.assert_array_equal(erode(m, 0), m)
    # a one-pixel hole takes its (2r+1)^2 neighbourhood with it
    m2 = np.ones((9, 9), bool)
    m2[4, 4] = False
    out = erode(m2, 1)
    assert out.sum() == 81 - 9 and not out[3:6, 3:6].any()
    # the image border is not an object edge: a full image stays full, a half image loses only its inner edge
    assert erode(np.ones((5, 7), bool), 2).all()
    left = np.zeros((6, 10), bool)
    left[:, :5] = True
    np.testing.assert_array_equal(erode(left, 2)[:, :3], True)
    assert not erode(left, 2)[:, 3:].any()


def _brute_erode(m, r):
    p = np.pad(m, r, mode="edge")
    out = np.ones_like(m)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            out &= p[dy:dy + m.shape[0], dx:dx + m.shape[1]]
    return out


def test_erode_equals_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(200):
        h, w = rng.integers(1, 14, 2)
        r = int(rng.integers(0, 5))
        m = rng.random((h, w)) < rng.uniform(0.5, 1.0)
        np.testing.assert_array_equal(erode(m, r), _brute_erode(m, r))


def test_erosion_removes_bleeding_edges():
    """Mixed depth on the mask's outer 2-px ring (edge bleeding) biases the raw centroid; erosion 2 removes it."""
    depth = _image(3.0)                           # background at 3 m
    depth[100:200, 300:400] = 1.0                 # object at 1 m
    depth[100:102, 300:400] = 2.5                 # its top two rows read as background-ish (flying pixels)
    depth[100:200, 300:302] = 2.0
    mask = np.zeros((480, 640), bool)
    mask[100:200, 300:400] = True
    raw = extract_object(mask, depth, K, RAW)
    eroded = extract_object(mask, depth, K, GeometryParams(depth_mask_erosion=2, depth_outlier_k=0.0))
    assert raw.centroid[2] > 1.04
    assert eroded.num_pixels == 96 * 96
    np.testing.assert_allclose(eroded.centroid, [(349.5 - 320) / 500, (149.5 - 240) / 400, 1.0], atol=1e-6)
    assert eroded.box_size[2] == 0.0


def test_range_filter_inclusive_and_invalid_values():
    depth = _image()
    mask = np.zeros((480, 640), bool)
    values = [0.1, 0.0999, 10.0, 10.001, np.nan, np.inf, -np.inf, -1.0, 0.0, 5.0]
    for i, z in enumerate(values):
        depth[10, 10 + i] = z
        mask[10, 10 + i] = True
    g = extract_object(mask, depth, K, RAW)
    np.testing.assert_allclose(np.sort(g.points[:, 2]), [0.1, 5.0, 10.0], rtol=1e-6)
    assert np.isfinite(g.points).all()
    narrow = extract_object(mask, depth, K, GeometryParams(depth_min=1.0, depth_max=6.0, depth_mask_erosion=0,
                                                            depth_outlier_k=0.0))
    np.testing.assert_allclose(narrow.points[:, 2], [5.0])


def test_invalid_depth_in_both_encodings_gives_no_object():
    mask = np.ones((480, 640), bool)
    zeros16 = depth_to_metres(np.zeros((480, 640), np.uint16), "16UC1")
    bad32 = np.resize(np.array([np.nan, 0.0, -1.0, np.inf], np.float32), (480, 640))
    assert extract_object(mask, zeros16, K) is None
    assert extract_object(mask, depth_to_metres(bad32, "32FC1"), K) is None
    assert extract_object(mask, bad32, K) is None          # unconverted invalid values fail the range test too


def test_empty_mask_gives_no_object():
    depth = _image(1.0)
    assert extract_object(np.zeros((480, 640), bool), depth, K) is None
    # a mask that erosion removes entirely
    thin = np.zeros((480, 640), bool)
    thin[100, 100:200] = True
    assert extract_object(thin, depth, K) is None
    assert extract_object(thin, depth, K, RAW).num_pixels == 100
    masks = np.zeros((3, 480, 640), bool)
    masks[1, 200:260, 200:260] = True
    out = extract_objects(masks, [4, 5, 6], depth, K)
    assert [g.object_id for g in out] == [5]
    assert extract_objects(np.zeros((0, 480, 640), bool), [], depth, K) == []


def test_mad_threshold_scaled_and_floor():
    rng = np.random.default_rng(2)
    z = (1.0 + rng.normal(0, 0.005, 1001)).astype(np.float32)
    z[:50] = 1.4                                     # 5 % background behind the object
    keep = mad_inliers(z, 3.0)
    med = np.median(z)
    mad = np.median(np.abs(z - med))
    np.testing.assert_array_equal(keep, np.abs(z - med) <= 3.0 * MAD_TO_SIGMA * mad)
    assert not keep[:50].any() and keep[50:].mean() > 0.99
    assert mad_inliers(z, 0.0).all()
    # a flat, quantised surface: MAD 0, but readings 1 mm off are the same surface (MAD floor 1 mm)
    flat = np.array([1.000] * 60 + [1.001] * 30 + [1.050] * 10, np.float32)
    keep = mad_inliers(flat, 3.0)
    assert keep[:90].all() and not keep[90:].any()


def test_mad_filter_removes_speckles_in_pipeline():
    rng = np.random.default_rng(3)
    depth = (1.5 + rng.normal(0, 0.003, (480, 640))).astype(np.float32)
    speckle = rng.random((480, 640)) < 0.05
    depth[speckle] = rng.uniform(0.2, 8.0, speckle.sum())
    mask = np.zeros((480, 640), bool)
    mask[200:300, 250:400] = True
    with_mad = extract_object(mask, depth, K, GeometryParams(depth_mask_erosion=0))
    without = extract_object(mask, depth, K, RAW)
    assert abs(with_mad.centroid[2] - 1.5) < 0.001
    assert abs(without.centroid[2] - 1.5) > 0.02
    assert with_mad.box_size[2] < 0.05 and without.box_size[2] > 5.0


def _naive_voxel(points, voxel):
    cells = {}
    for p in points.astype(np.float64):
        key = tuple(np.floor(p / voxel).astype(int))
        cells.setdefault(key, []).append(p)
    return {k: np.mean(v, axis=0) for k, v in cells.items()}


def test_voxel_mean_per_cube_hand_computed():
    pts = np.array([[0.001, 0.001, 1.001], [0.004, 0.002, 1.003],   # one cube
                    [-0.001, 0.001, 1.001],                        # floor(-0.1) = -1: the next cube
                    [0.015, 0.001, 1.001]], np.float32)             # x cube 1
    out = voxel_downsample(pts, 0.01)
    assert out.shape == (3, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, [[-0.001, 0.001, 1.001], [0.0025, 0.0015, 1.002], [0.015, 0.001, 1.001]],
                               atol=1e-7)
    with pytest.raises(ValueError):
        voxel_downsample(pts, 0.0)
    assert voxel_downsample(np.zeros((0, 3), np.float32), 0.01).shape == (0, 3)


@pytest.mark.parametrize("spread", [0.3, 200.0])   # compact object (dense count) and a huge extent (np.unique)
def test_voxel_matches_naive(spread):
    rng = np.random.default_rng(4)
    pts = rng.uniform(-spread, spread, (3000, 3)).astype(np.float32)
    pts[:1500] = pts[:1500] * 0.01 + 0.05       # dense cluster: many points share cubes
    out = voxel_downsample(pts, 0.02)
    naive = _naive_voxel(pts, 0.02)
    assert out.shape[0] == len(naive)
    got = {tuple(np.floor(p.astype(np.float64) / 0.02).astype(int)): p for p in out}
    for key, mean in naive.items():
        np.testing.assert_allclose(got[key], mean, atol=2e-5 * max(1.0, spread))


def test_voxel_in_pipeline_keeps_centroid_and_box():
    depth = _image(2.0)
    mask = np.zeros((480, 640), bool)
    mask[100:300, 100:300] = True
    full = extract_object(mask, depth, K)
    vox = extract_object(mask, depth, K, GeometryParams(points_voxel=0.05))
    assert vox.points.shape[0] < full.points.shape[0] / 50
    np.testing.assert_array_equal(vox.centroid, full.centroid)
    np.testing.assert_array_equal(vox.box_size, full.box_size)
    low, high = vox.box_center - vox.box_size / 2, vox.box_center + vox.box_size / 2
    assert (vox.points >= low - 1e-6).all() and (vox.points <= high + 1e-6).all()


def _plane_depth(intr: Intrinsics, normal, d):
    """Depth of the plane n . X = d at every pixel centre of an image with these intrinsics."""
    u = np.arange(intr.width, dtype=np.float64)
    v = np.arange(intr.height, dtype=np.float64)
    xn, yn = np.meshgrid((u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy)
    return d / (normal[0] * xn + normal[1] * yn + normal[2])


def test_half_resolution_depth_with_colour_mask_and_k():
    """Depth binned 2x2 (inverse depth of a plane is affine in pixels, so the 2x2 mean is exact at the block
    centre) is read with the colour image's K and mask: every point lies on the plane. The plain `cx * s` scaling
    would put them measurably off it; the test can tell the two apart."""
    k = Intrinsics(525.0, 520.0, 322.3, 236.8, 640, 480)
    normal, d = np.array([0.3, -0.2, 1.0]), 1.8
    full = _plane_depth(k, normal, d)                                              # [480, 640]
    half = 1.0 / (1.0 / full).reshape(240, 2, 320, 2).mean(axis=(1, 3))           # [240, 320] binned
    mask = np.zeros((480, 640), bool)
    mask[120:360, 150:500] = True
    g = extract_object(mask, half.astype(np.float32), k, RAW)
    assert g.num_pixels == 120 * 175
    residual = g.points.astype(np.float64) @ normal - d
    assert np.abs(residual).max() < 1e-6                                         # float32 rounding only
    plain = Intrinsics(k.fx / 2, k.fy / 2, k.cx / 2, k.cy / 2, 320, 240)            # the other convention
    wrong = extract_object(mask, half.astype(np.float32), plain, RAW)
    assert np.abs(wrong.points.astype(np.float64) @ normal - d).max() > 1e-4    # 0.25 px off: ~0.2 mm here


def test_mask_is_not_modified_and_params_validated():
    depth = _image(1.0)
    mask = np.zeros((480, 640), bool)
    mask[10:50, 10:50] = True
    before = mask.copy()
    extract_object(mask, depth, K, RAW)
    extract_object(mask, depth, K)
    np.testing.assert_array_equal(mask, before)
    for bad in (dict(depth_min=-0.1), dict(depth_min=5.0, depth_max=1.0), dict(depth_max=np.inf),
                dict(depth_mask_erosion=-1), dict(depth_mask_erosion=1.5), dict(depth_outlier_k=-1.0),
                dict(points_voxel=-0.01), dict(points_voxel=np.nan)):
        with pytest.raises(ValueError):
            GeometryParams(**bad)
    with pytest.raises(ValueError, match="masks"):
        extract_objects(np.zeros((2, 480, 640), bool), [1], depth, K)
    with pytest.raises(ValueError, match="depth"):
        extract_object(mask, depth[None], K)
    with pytest.raises(ValueError, match="metres"):
        extract_object(mask, np.full((480, 640), 1000, np.uint16), K)   # raw millimetres: convert first
