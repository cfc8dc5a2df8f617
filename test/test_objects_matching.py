"""Detections -> actions without ROS (sam2_ros.objects): box geometry, checking a detector's output, and the matching
rules of issue 14 (one-to-one, best IoU first, threshold, class / score filters, max_objects, lowest free id)."""
import math

import numpy as np
import pytest

from sam2_ros.objects import (MAX_BOX_SCALE, ObjectOptions, ObjectRegistry, RawDetection, Status, box_iou,
                              greedy_match, lowest_free_ids, mask_boxes, parse_detections, rotated_size_for_bounds,
                              rotated_to_aabb)

SIZE = (240, 320)  # H, W


def raw(x0, y0, x1, y1, class_id="cup", score=0.9, theta=0.0):
    """An axis-aligned detection from its corners."""
    return RawDetection((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, theta, ((class_id, score),))


def pairs(actions):
    """(detection, object_id) of each action."""
    return tuple((a.detection, a.object_id) for a in actions)


def registry_with(boxes, status=None, options=None, labels=None):
    """A registry holding objects 1..N last seen at `boxes` (None: never seen), with the given statuses."""
    reg = ObjectRegistry(options or ObjectOptions())
    for k, box in enumerate(boxes):
        reg.add(k + 1, 0.0, (labels or {}).get(k + 1, ""), box=box)
    for k, st in enumerate(status or []):
        if st == Status.LOST:  # drive it there through the status rules
            for t in range(reg.options.lost_after):
                reg.update(0.1 * (t + 1), [k + 1], [0.0], [[np.nan] * 4])
            assert reg.get(k + 1).status == Status.LOST
        elif st == Status.OCCLUDED:
            reg.update(0.1, [k + 1], [0.0], [[np.nan] * 4])
            assert reg.get(k + 1).status == Status.OCCLUDED
    return reg


# ---------------------------------------------------------------- geometry
def test_box_iou_values_and_shapes():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 10]], float)  # the second has no area
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]], float)
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou[0], [50 / 150, 1.0, 0.0])
    np.testing.assert_array_equal(iou[1], [0, 0, 0])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3) and box_iou(a, np.zeros((0, 4))).shape == (2, 0)


def test_rotated_boxes_reduce_to_their_axis_aligned_bounds():
    # theta 0: the box itself; pi/2: sizes swap; pi/4: a square of side s has bounds of side s*sqrt(2).
    np.testing.assert_allclose(rotated_to_aabb(50, 40, 20, 10, 0.0), [[40, 35, 60, 45]])
    np.testing.assert_allclose(rotated_to_aabb(50, 40, 20, 10, math.pi / 2), [[45, 30, 55, 50]], atol=1e-9)
    np.testing.assert_allclose(rotated_to_aabb(50, 40, 10, 10, math.pi / 4), [[50 - 5 * 2 ** 0.5, 40 - 5 * 2 ** 0.5,
                                                                          50 + 5 * 2 ** 0.5, 40 + 5 * 2 ** 0.5]])
    np.testing.assert_allclose(rotated_to_aabb(50, 40, 20, 10, -math.pi / 2),
                               rotated_to_aabb(50, 40, 20, 10, math.pi / 2))
    # The corners of the rotated rectangle, rotated explicitly, have exactly these bounds.
    cx, cy, sx, sy, th = 100.0, 80.0, 40.0, 16.0, 0.37
    corners = np.array([[u, v] for u in (-sx / 2, sx / 2) for v in (-sy / 2, sy / 2)])
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    pts = corners @ rot.T + [cx, cy]
    np.testing.assert_allclose(rotated_to_aabb(cx, cy, sx, sy, th)[0], [*pts.min(0), *pts.max(0)])
    # and the inverse used by the synthetic detector gives back the bounds.
    sizes = rotated_size_for_bounds(60.0, 40.0, 0.3)
    np.testing.assert_allclose(rotated_to_aabb(0, 0, *sizes, 0.3)[0], [-30, -20, 30, 20])
    assert rotated_size_for_bounds(60.0, 40.0, math.pi / 4) is None


def test_mask_boxes_match_the_synthetic_frame_boxes():
    from sam2_ros.sim import SyntheticScene

    frame = SyntheticScene(*SIZE, num_objects=4, seed=3).frame(7)
    masks = np.concatenate([frame.masks, np.zeros((1, *SIZE), bool)])
    boxes = mask_boxes(masks)
    for k in range(4):
        assert tuple(boxes[k]) == frame.box(k)
    assert np.isnan(boxes[4]).all()
    assert mask_boxes(np.zeros((0, *SIZE), bool)).shape == (0, 4)


# ---------------------------------------------------------------- checking a detector's output
def test_best_hypothesis_and_clipping():
    det = RawDetection(10, 20, 40, 30, 0.0, (("cup", 0.6), ("bottle", 0.8), ("book", 0.8)))
    parsed = parse_detections([det], SIZE)
    assert parsed.class_ids == ("bottle",) and parsed.scores.tolist() == [0.8]  # highest, first on ties
    np.testing.assert_allclose(parsed.boxes, [[0, 5, 30, 35]])  # clipped to the image (x_min -10 -> 0)
    assert parsed.skipped == ()


MALFORMED = [
    ("nan centre", RawDetection(float("nan"), 50, 20, 20, 0.0, (("cup", 0.9),)), "centre"),
    ("inf centre", RawDetection(50, float("inf"), 20, 20, 0.0, (("cup", 0.9),)), "centre"),
    ("nan size", RawDetection(50, 50, float("nan"), 20, 0.0, (("cup", 0.9),)), "size"),
    ("negative size", RawDetection(50, 50, -20, 20, 0.0, (("cup", 0.9),)), "size must be > 0"),
    ("zero size", RawDetection(50, 50, 20, 0, 0.0, (("cup", 0.9),)), "size must be > 0"),
    ("huge size", RawDetection(50, 50, 1e9, 20, 0.0, (("cup", 0.9),)), "absurd"),
    ("huge rotated", RawDetection(50, 50, 20, 2 * MAX_BOX_SCALE * 320, 1.2, (("cup", 0.9),)), "absurd"),
    ("nan theta", RawDetection(50, 50, 20, 20, float("nan"), (("cup", 0.9),)), "theta"),
    ("empty results", RawDetection(50, 50, 20, 20, 0.0, ()), "no hypotheses"),
    ("nan score", RawDetection(50, 50, 20, 20, 0.0, (("cup", float("nan")),)), "score"),
    ("class not a string", RawDetection(50, 50, 20, 20, 0.0, ((7, 0.9),)), "class_id"),
    ("unreadable number", RawDetection(None, 50, 20, 20, 0.0, (("cup", 0.9),)), "centre"),
    ("no hypotheses field", (50, 50, 20, 20, 0.0), "no hypotheses"),
    ("text number", RawDetection("x", 50, 20, 20, 0.0, (("cup", 0.9),)), "unreadable"),
    ("outside the image", RawDetection(-100, 50, 20, 20, 0.0, (("cup", 0.9),)), "outside"),
]


@pytest.mark.parametrize("name,bad,words", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_detection_is_skipped_with_a_reason_and_nothing_else_changes(name, bad, words):
    good = [raw(10, 10, 60, 60, "cup"), raw(100, 100, 150, 160, "book", 0.7)]
    reg = registry_with([(200, 20, 260, 80)])
    clean = reg.plan_detections(parse_detections(good, SIZE))
    mixed_input = [good[0], bad, good[1]]
    parsed = parse_detections(mixed_input, SIZE)
    assert [i for i, _ in parsed.skipped] == [1]
    assert words in parsed.skipped[0][1], parsed.skipped[0][1]
    plan = reg.plan_detections(parsed)
    assert plan.skipped == parsed.skipped
    # The same objects with the same boxes as without the bad one; positions still name the given sequence.
    assert [(a.object_id, a.label, tuple(a.box)) for a in plan.new] == \
           [(a.object_id, a.label, tuple(a.box)) for a in clean.new]
    assert [a.detection for a in plan.new] == [0, 2]
    assert reg.ids == [1] and reg.get(1).status == Status.TRACKED


def test_empty_inputs():
    parsed = parse_detections([], SIZE)
    assert len(parsed) == 0 and parsed.boxes.shape == (0, 4)
    plan = ObjectRegistry().plan_detections(parsed)
    assert plan.new == plan.reacquired == pairs(plan.matched) == plan.over_limit == plan.skipped == ()
    plan = registry_with([(0, 0, 10, 10)]).plan_detections(parsed)  # objects but no detections
    assert plan.new == pairs(plan.matched) == ()
    plan = ObjectRegistry().plan_detections(parse_detections([raw(0, 0, 10, 10)], SIZE))  # detections, no objects
    assert [a.object_id for a in plan.new] == [1]


# ---------------------------------------------------------------- matching rules
def test_greedy_match_is_one_to_one_and_best_first():
    # Row 0 prefers column 1 (0.8); row 1 also overlaps column 1 (0.6) but column 1 is taken, so it gets column 0.
    iou = np.array([[0.5, 0.8], [0.4, 0.6]])
    assert greedy_match(iou, 0.3) == [(0, 1), (1, 0)]
    assert greedy_match(iou, 0.45) == [(0, 1)]  # row 1's remaining pair (0.4) is below the threshold
    assert greedy_match(np.array([[0.5, 0.5]]), 0.3) == [(0, 0)]  # ties: the lower column
    assert greedy_match(np.zeros((3, 2)), 0.0) == []  # IoU 0 never matches
    assert greedy_match(np.zeros((0, 5)), 0.3) == [] and greedy_match(np.zeros((5, 0)), 0.3) == []


def test_one_detection_per_object_and_matched_objects_get_nothing():
    reg = registry_with([(10, 10, 60, 60)])
    # Two detections on object 1: the better one confirms it, the other becomes object 2.
    plan = reg.plan_detections(parse_detections([raw(12, 10, 62, 60, score=0.95), raw(10, 10, 60, 60)], SIZE))
    assert pairs(plan.matched) == ((1, 1),)
    assert [(a.detection, a.object_id) for a in plan.new] == [(0, 2)]
    assert plan.reacquired == ()


def test_match_threshold():
    reg = registry_with([(0, 0, 100, 100)])
    # IoU of (0,0,100,100) with (0,0,100,h) is h/100.
    at = reg.plan_detections(parse_detections([raw(0, 0, 100, 30)], SIZE))
    below = reg.plan_detections(parse_detections([raw(0, 0, 100, 29)], SIZE))
    assert pairs(at.matched) == ((0, 1),) and at.new == ()
    assert pairs(below.matched) == () and [a.object_id for a in below.new] == [2]
    reg.options = ObjectOptions(detection_match_iou=0.25)
    assert pairs(reg.plan_detections(parse_detections([raw(0, 0, 100, 29)], SIZE)).matched) == ((0, 1),)


def test_class_filter_changed_between_calls():
    reg = ObjectRegistry(ObjectOptions(detection_classes=["cup"]))
    parsed = parse_detections([raw(0, 0, 50, 50, "cup"), raw(100, 100, 150, 150, "bottle")], SIZE)
    plan = reg.plan_detections(parsed)
    assert [a.label for a in plan.new] == ["cup"] and plan.filtered == (1,)
    reg.options = ObjectOptions(detection_classes=("bottle",))
    plan = reg.plan_detections(parsed)
    assert [a.label for a in plan.new] == ["bottle"] and plan.filtered == (0,)
    reg.options = ObjectOptions()  # empty = every class
    assert [a.label for a in reg.plan_detections(parsed).new] == ["cup", "bottle"]
    reg.options = ObjectOptions(detection_classes=("Cup",))  # exact, case-sensitive
    assert reg.plan_detections(parsed).new == ()


def test_min_score():
    parsed = parse_detections([raw(0, 0, 50, 50, score=0.5), raw(100, 100, 150, 150, score=0.4999)], SIZE)
    plan = ObjectRegistry().plan_detections(parsed)
    assert [a.detection for a in plan.new] == [0] and plan.filtered == (1,)
    plan = ObjectRegistry(ObjectOptions(detection_min_score=0.3)).plan_detections(parsed)
    assert [a.detection for a in plan.new] == [0, 1]


def test_filtered_detections_do_not_take_an_object_from_a_wanted_one():
    reg = registry_with([(0, 0, 50, 50)], options=ObjectOptions(detection_classes=("cup",)))
    parsed = parse_detections([raw(0, 0, 50, 50, "plate"), raw(2, 0, 52, 50, "cup")], SIZE)
    assert pairs(reg.plan_detections(parsed).matched) == ((1, 1),)


def test_rotated_detection_matches_like_its_bounds():
    reg = registry_with([(100, 60, 160, 100)])
    sizes = rotated_size_for_bounds(60, 40, 0.25)
    rotated = RawDetection(130, 80, sizes[0], sizes[1], 0.25, (("cup", 0.9),))
    parsed = parse_detections([rotated], SIZE)
    np.testing.assert_allclose(parsed.boxes, [[100, 60, 160, 100]])
    assert pairs(reg.plan_detections(parsed).matched) == ((0, 1),)
    # The same box given unrotated with theta = 0.25 has wider bounds, and as a new object its prompt is the bounds.
    plain = parse_detections([RawDetection(130, 80, 60, 40, 0.25, (("cup", 0.9),))], (240, 320))
    np.testing.assert_allclose(plain.boxes[0], rotated_to_aabb(130, 80, 60, 40, 0.25)[0])


def test_lost_object_is_reacquired_tracked_and_occluded_are_not():
    boxes = [(0, 0, 50, 50), (100, 0, 150, 50), (200, 0, 250, 50)]
    reg = registry_with(boxes, status=[Status.TRACKED, Status.OCCLUDED, Status.LOST], labels={3: "cup"})
    parsed = parse_detections([raw(*b, class_id=c, score=0.8) for b, c in zip(boxes, ("mug", "mug", "cup"))], SIZE)
    plan = reg.plan_detections(parsed)
    assert pairs(plan.matched) == ((0, 1), (1, 2)) and plan.new == ()
    assert [(a.detection, a.object_id, a.label, a.reason) for a in plan.reacquired] == \
           [(2, 3, "cup", "detection cup 0.80, re-acquisition score 1.00")]
    # Issue 24: a LOST object is re-acquired only by its own label; a mug where the lost cup was is a new object.
    mug = reg.plan_detections(parse_detections([raw(*boxes[2], class_id="mug", score=0.8)], SIZE))
    assert mug.reacquired == () and [(a.object_id, a.label) for a in mug.new] == [(4, "mug")]
    event = reg.apply_action(plan.reacquired[0], 5.0)
    assert event.kind.name == "REACQUIRED" and event.reason == "detection cup 0.80, re-acquisition score 1.00"
    info = reg.get(3)
    assert info.status == Status.TRACKED and info.label == "cup" and info.label_score == pytest.approx(0.8)


def test_objects_never_seen_cannot_be_matched():
    reg = registry_with([None])  # prompted, no mask yet
    plan = reg.plan_detections(parse_detections([raw(0, 0, 50, 50)], SIZE))
    assert [a.object_id for a in plan.new] == [2]


def test_planning_changes_nothing():
    reg = registry_with([(0, 0, 50, 50)], status=[Status.LOST])
    before = [reg.get(i) for i in reg.ids]
    plan = reg.plan_detections(parse_detections([raw(0, 0, 50, 50), raw(100, 100, 150, 150)], SIZE))
    assert len(plan.reacquired) == 1 and len(plan.new) == 1
    assert [reg.get(i) for i in reg.ids] == before


def test_lowest_free_id_skips_ids_in_use():
    assert lowest_free_ids([], 3) == [1, 2, 3]
    assert lowest_free_ids([1, 3, 4], 3) == [2, 5, 6]
    reg = ObjectRegistry()
    reg.add(1, 0.0)
    reg.add(3, 0.0)
    parsed = parse_detections([raw(0, 0, 20, 20), raw(100, 0, 120, 20), raw(200, 0, 220, 20)], SIZE)
    assert [a.object_id for a in reg.plan_detections(parsed).new] == [2, 4, 5]


def test_max_objects_keeps_the_best_scores_and_reports_the_limit():
    reg = registry_with([(0, 0, 20, 20), (50, 0, 70, 20)], options=ObjectOptions(max_objects=3))
    parsed = parse_detections([raw(100, 0, 120, 20, score=0.6), raw(150, 0, 170, 20, score=0.95),
                               raw(200, 0, 220, 20, score=0.7)], SIZE)
    plan = reg.plan_detections(parsed)
    assert [(a.detection, a.object_id) for a in plan.new] == [(1, 3)]
    assert plan.over_limit == (0, 2) and plan.limit_reached
    reg.apply_action(plan.new[0], 1.0)
    assert reg.plan_detections(parsed).new == ()  # full: nothing more, every wanted unmatched one over the limit
    with pytest.raises(ValueError, match="max_objects"):
        reg.add(9, 1.0)
    assert not registry_with([]).plan_detections(parsed).limit_reached


def test_last_detection_box_keeps_a_poorly_segmented_object_from_being_created_again():
    reg = ObjectRegistry(ObjectOptions(lost_after=5))
    first = reg.plan_detections(parse_detections([raw(100, 100, 140, 140)], SIZE))
    reg.apply_action(first.new[0], 0.0)  # object 1 from a detection; its mask then covers a neighbour too
    detection = parse_detections([raw(102, 100, 142, 140)], SIZE)
    for t in range(1, 5):
        reg.update(0.1 * t, [1], [0.9], [(20, 60, 150, 200)])  # IoU of mask box and detection: 0.09
        plan = reg.plan_detections(detection)
        assert pairs(plan.matched) == ((0, 1),) and plan.new == ()
        reg.confirm(plan.matched[0])
    # Without detections for lost_after frames the detection box is forgotten: the mask box alone decides.
    for t in range(5, 11):
        reg.update(0.1 * t, [1], [0.9], [(20, 60, 150, 200)])
    assert reg.get(1).detection_box is None
    assert [a.object_id for a in reg.plan_detections(detection).new] == [2]


def test_detection_box_is_kept_for_lost_after_frames():
    reg = ObjectRegistry(ObjectOptions(lost_after=3))
    reg.apply_action(reg.plan_detections(parse_detections([raw(0, 0, 40, 40)], SIZE)).new[0], 0.0)
    for t in range(3):
        reg.update(0.1 * (t + 1), [1], [0.9], [(200, 200, 240, 240)])
    assert reg.get(1).detection_box == (0, 0, 40, 40)
    reg.update(0.4, [1], [0.9], [(200, 200, 240, 240)])
    assert reg.get(1).detection_box is None

