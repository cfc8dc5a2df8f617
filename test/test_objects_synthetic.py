"""The synthetic detector and the scene with a shape out of view (sam2_ros.sim.detector): boxes equal the
ground truth, noise is seeded, rotated output keeps its bounds, and hiding a shape keeps pixels and masks consistent."""
import numpy as np
import pytest

from sam2_ros.objects import parse_detections
from sam2_ros.sim import (CLASS_NAMES, FALSE_POSITIVE_CLASS, HiddenShapeScene, SyntheticDetector,
                                                 pick_hide_window)
from sam2_ros.sim import SyntheticScene

H, W = 240, 320


@pytest.fixture(scope="module")
def scene():
    return SyntheticScene(H, W, num_objects=4, seed=0)


def test_boxes_are_the_visible_shapes_with_their_classes(scene):
    detector = SyntheticDetector()
    for index in (0, 17, 33):
        frame = scene.frame(index)
        found = detector.detect(frame)
        visible = [k for k in range(4) if frame.masks[k].sum() >= detector.min_area]
        assert [d.truth_id for d in found] == [frame.object_ids[k] for k in visible]
        parsed = parse_detections([d.raw for d in found], (H, W))
        assert parsed.skipped == ()
        np.testing.assert_allclose(parsed.boxes, [frame.box(k) for k in visible])
        assert parsed.class_ids == tuple(CLASS_NAMES[k] for k in visible)
        assert parsed.scores.tolist() == [0.9] * len(visible)
    assert SyntheticDetector(class_names={1: "a", 2: "b"}).class_of(2) == "b"
    assert SyntheticDetector(class_names=["x", "y"]).class_of(3) == "x"


def test_rotated_output_has_the_true_box_as_its_bounds(scene):
    frame = scene.frame(5)
    found = SyntheticDetector(theta=0.2).detect(frame)
    assert all(d.raw.theta == pytest.approx(0.2) for d in found)
    np.testing.assert_allclose(parse_detections([d.raw for d in found], (H, W)).boxes,
                               [frame.box(k) for k in range(4)], atol=1e-6)


def test_noise_is_seeded_per_frame(scene):
    noisy = dict(jitter=3.0, dropout=0.3, false_positives=1.5, score_noise=0.05)
    frame = scene.frame(12)
    a, b = SyntheticDetector(seed=1, **noisy).detect(frame), SyntheticDetector(seed=1, **noisy).detect(frame)
    assert a == b
    runs = [SyntheticDetector(seed=s, **noisy).detect(frame) for s in range(20)]
    assert len({tuple(r) for r in runs}) == 20  # different seeds, different noise
    counts = [sum(d.truth_id > 0 for d in r) for r in runs]
    spurious = [d for r in runs for d in r if d.truth_id == 0]
    assert min(counts) < 4 and max(counts) <= 4  # dropout removes some, never adds
    assert spurious and all(d.raw.hypotheses[0][0] == FALSE_POSITIVE_CLASS for d in spurious)
    assert all(parse_detections([d.raw for d in r], (H, W)).skipped == () for r in runs)
    assert SyntheticDetector(dropout=1.0).detect(frame) == []


def test_withheld_shape_is_not_detected_on_those_frames(scene):
    detector = SyntheticDetector(withheld={2: range(10, 20)})
    assert 2 not in [d.truth_id for d in detector.detect(scene.frame(15))]
    assert 2 in [d.truth_id for d in detector.detect(scene.frame(20))]


def test_hidden_shape_shows_the_background_and_has_no_mask(scene):
    hidden = HiddenShapeScene(scene, {3: range(10, 20)})
    background = SyntheticScene(H, W, num_objects=0, seed=0).frame(0).rgb
    plain = scene.frame(12)
    # The premise: the scene's pixels outside every shape are its bare background.
    outside = ~plain.masks.any(axis=0)
    np.testing.assert_array_equal(plain.rgb[outside], background[outside])
    frame = hidden.frame(12)
    assert plain.masks[2].sum() > 500 and not frame.masks[2].any()
    np.testing.assert_array_equal(frame.rgb[plain.masks[2]], background[plain.masks[2]])
    np.testing.assert_array_equal(frame.masks[[0, 1, 3]], plain.masks[[0, 1, 3]])
    keep = ~plain.masks[2]
    np.testing.assert_array_equal(frame.rgb[keep], plain.rgb[keep])
    assert 3 not in [d.truth_id for d in SyntheticDetector().detect(frame)]
    after = hidden.frame(20)
    np.testing.assert_array_equal(after.rgb, scene.frame(20).rgb)
    with pytest.raises(ValueError, match="no such shapes"):
        HiddenShapeScene(scene, {9: range(3)})


def test_pick_hide_window_finds_a_return_near_the_exit(scene):
    start, iou = pick_hide_window(scene, 1, frames=40, starts=range(5, 60))
    assert 5 <= start < 60 and 0 < iou <= 1
    before, after = scene.frame(start - 1).box(0), scene.frame(start + 40).box(0)
    from sam2_ros.objects import box_iou
    assert box_iou(np.array([before], float), np.array([after], float))[0, 0] == pytest.approx(iou)
