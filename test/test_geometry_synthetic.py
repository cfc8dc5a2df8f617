"""The synthetic RGB-D camera: occlusion-consistent planes, seeded noise and invalid pixels in 16UC1 / 32FC1 at full
and half resolution, exact ground truth; and the geometry pipeline's accuracy on it (centroids within 1 cm in z and
2 cm in x, y), the accuracy the node test must show with predicted masks."""
from __future__ import annotations

import numpy as np
import pytest

from sam2_ros.geometry import GeometryParams, depth_to_metres, extract_objects
from sam2_ros.sim import SyntheticScene
from sam2_ros.sim import SyntheticDepthCamera, erosion_shift


def test_deterministic_and_random_access():
    scene = SyntheticScene(120, 160, num_objects=3, seed=5)
    a, b = SyntheticDepthCamera(scene), SyntheticDepthCamera(scene)
    f7 = scene.frame(7)
    np.testing.assert_array_equal(a.render(f7, "16UC1").depth, b.render(scene.frame(7), "16UC1").depth)
    a.render(scene.frame(3))
    np.testing.assert_array_equal(a.render(f7, "32FC1").depth, b.render(f7, "32FC1").depth)
    assert not np.array_equal(a.render(scene.frame(8), "16UC1").depth, a.render(f7, "16UC1").depth)


@pytest.mark.parametrize("n, seed", [(1, 0), (2, 1), (2, 7), (6, 2), (16, 3)])
def test_planes_are_ordered_like_the_occlusion(n, seed):
    """Later objects are drawn on top in colour, so they must be nearer in depth everywhere they could overlap, and
    every object in front of the background; the noise-free depth of a pixel is its owner's plane."""
    scene = SyntheticScene(96, 128, num_objects=n, seed=seed)
    camera = SyntheticDepthCamera(scene, noise=False)
    intr = camera.intrinsics
    u, v = np.arange(-0.5, 128, 0.5), np.arange(-0.5, 96, 0.5)   # pixel centres and edges, the corners included
    xn, yn = np.meshgrid((u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy)
    for t in range(0, 400, 7):
        inv = camera.inverse_depth(t, xn, yn)                    # [n + 1, ...]: objects far -> near, background last
        assert (np.diff(inv, axis=0)[:-1] > 0).all()             # object k + 1 nearer than k everywhere
        assert (inv[:n] > inv[n]).all()                          # every object in front of the background
        assert (inv > 1 / 10.0).all() and (inv < 1 / 0.5).all()  # 0.5 .. 10 m
    for t in (0, 97):
        frame = scene.frame(t)
        z = camera.render(frame, "32FC1").depth
        xx, yy = np.meshgrid((np.arange(128) - intr.cx) / intr.fx, (np.arange(96) - intr.cy) / intr.fy)
        inv = camera.inverse_depth(t, xx, yy)
        for k in range(n):
            m = frame.masks[k]
            np.testing.assert_allclose(z[m], 1.0 / inv[k][m], rtol=1e-6)
        background = ~frame.masks.any(0)
        np.testing.assert_allclose(z[background], 1.0 / inv[n][background], rtol=1e-6)


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_encodings_noise_and_invalid_pixels(scale):
    scene = SyntheticScene(240, 320, num_objects=4, seed=1)
    camera = SyntheticDepthCamera(scene)
    frame = scene.frame(12)
    mm = camera.render(frame, "16UC1", scale)
    m = camera.render(frame, "32FC1", scale)
    shape = (round(240 * scale), round(320 * scale))
    assert mm.depth.shape == m.depth.shape == shape
    assert mm.depth.dtype == np.uint16 and m.depth.dtype == np.float32
    assert (mm.intrinsics.width, mm.intrinsics.height) == (shape[1], shape[0])
    assert mm.intrinsics == camera.intrinsics.scaled_to(shape[1], shape[0])
    invalid16, invalid32 = mm.depth == 0, np.isnan(m.depth)
    np.testing.assert_array_equal(invalid16, invalid32)          # the same reading, two encodings
    assert 0.01 < invalid32.mean() < 0.1                         # dropouts + lost edge pixels
    ok = ~invalid32
    np.testing.assert_allclose(mm.depth[ok] / 1000.0, m.depth[ok], atol=0.0005 + 1e-6)
    # noise: against the noise-free render, most pixels differ by a few mm, a few (speckles, edges) by a lot
    clean = SyntheticDepthCamera(scene, noise=False).render(frame, "32FC1", scale).depth
    err = np.abs(m.depth[ok] - clean[ok])
    assert 0.0005 < np.median(err) < 0.01
    assert (err > 0.2).mean() > 0.001
    np.testing.assert_array_equal(mm.centroids, m.centroids)
    with pytest.raises(ValueError):
        camera.render(frame, "mono8")


def test_ground_truth_is_the_visible_part():
    """Noise-free depth at full resolution with every filter off gives the ground-truth centroid exactly (the ground
    truth and the pipeline's back-projection agree); a hidden object has a NaN centroid and no points."""
    scene = SyntheticScene(240, 320, num_objects=3, seed=4)
    camera = SyntheticDepthCamera(scene, noise=False)
    raw = GeometryParams(depth_mask_erosion=0, depth_outlier_k=0.0)
    for t in (0, 31):
        frame = scene.frame(t)
        d = camera.render(frame, "32FC1")
        out = {g.object_id: g for g in extract_objects(frame.masks, frame.object_ids, d.depth, camera.intrinsics, raw)}
        for k, object_id in enumerate(frame.object_ids):
            assert d.visible_pixels[k] == frame.masks[k].sum()
            if d.visible_pixels[k]:
                np.testing.assert_allclose(out[object_id].centroid, d.centroids[k], atol=2e-6)
                assert out[object_id].num_pixels == d.visible_pixels[k]
    frame = scene.frame(0)
    frame.masks[1] = False
    d = camera.render(frame)
    assert np.isnan(d.centroids[1]).all() and d.visible_pixels[1] == 0
    empty = SyntheticScene(64, 64, num_objects=0, seed=0)
    d = SyntheticDepthCamera(empty).render(empty.frame(3), "16UC1", 0.5)
    assert d.depth.shape == (32, 32) and d.centroids.shape == (0, 3)
    assert 3000 < np.median(d.depth[d.depth > 0]) < 4000      # the background wall at ~3.5 m


def _checked_errors(num_objects: int, seed: int, frames, encoding: str, scale: float):
    scene = SyntheticScene(480, 640, num_objects=num_objects, seed=seed)
    camera = SyntheticDepthCamera(scene)
    errors, skipped = [], 0
    for t in frames:
        frame = scene.frame(t)
        d = camera.render(frame, encoding, scale)
        depth = depth_to_metres(d.depth, encoding)
        out = {g.object_id: g for g in extract_objects(frame.masks, frame.object_ids, depth, camera.intrinsics)}
        for k, object_id in enumerate(frame.object_ids):
            if erosion_shift(frame.masks[k], depth.shape, d.intrinsics, d.centroids[k][2]) > 0.01:
                skipped += 1  # a sliver: erosion alone moves its centroid by > 1 cm (see the test's docstring)
                continue
            errors.append(np.abs(out[object_id].centroid - d.centroids[k]))
    return np.array(errors), skipped


@pytest.mark.parametrize("encoding, scale", [("16UC1", 1.0), ("32FC1", 1.0), ("16UC1", 0.5), ("32FC1", 0.5)])
def test_centroid_accuracy_on_ground_truth_masks(encoding, scale):
    """Default filters (erosion 2 px, MAD k 3), noisy depth with flying pixels, dropouts and speckles: every object
    whose visible part is not a sliver is within 1 cm in z and 2 cm in x and y. A sliver here is a visible part whose
    2-D centroid moves by more than 1 cm when eroded: erosion removes a ring of 2 depth px (4 colour px at half
    resolution), which moves the centroid of a crescent-shaped, heavily occluded part by up to several cm. That is
    the erosion's cost, by design, not depth error; it is measured on the mask alone, without depth."""
    errors, skipped = [], 0
    for num_objects, seed, frames in ((2, 0, (0, 20, 40)), (3, 1, (5, 50))):
        e, s = _checked_errors(num_objects, seed, frames, encoding, scale)
        errors.append(e)
        skipped += s
    errors = np.concatenate(errors)
    print(f"{encoding} x{scale}: {len(errors)} objects checked, {skipped} slivers skipped, "
          f"max error x {errors[:, 0].max() * 1000:.1f} mm, y {errors[:, 1].max() * 1000:.1f} mm, "
          f"z {errors[:, 2].max() * 1000:.1f} mm")
    assert len(errors) >= 10
    assert (errors[:, 2] <= 0.01).all()
    assert (errors[:, :2] <= 0.02).all()


def test_erosion_shift_measures_the_filter_not_the_depth():
    from sam2_ros.geometry import Intrinsics

    intr = Intrinsics(100.0, 100.0, 49.5, 49.5, 100, 100)
    square = np.zeros((100, 100), bool)
    square[20:60, 30:70] = True
    assert erosion_shift(square, (100, 100), intr, 2.0) == 0.0       # symmetric: erosion moves nothing
    ell = square.copy()
    ell[20:50, 40:70] = False                                         # an L: thin arms lose more than the corner
    assert erosion_shift(ell, (100, 100), intr, 2.0) > 0.005
    thin = np.zeros((100, 100), bool)
    thin[50:53, 10:90] = True
    assert erosion_shift(thin, (100, 100), intr, 2.0) == float("inf")
