"""Object permanence under a detector without ROS or a model (issue 24): one-to-one assignment (against brute force),
the motion filter, the re-acquisition score, confirmation (LOST when the detector stops seeing an object, counted
per detection array), re-acquisition before creation, no swap in a crossing, drift correction, events once each.

The tracker is a stand-in that takes box prompts (the rules only need its answers); the real tracker runs in
test_objects_scenes.py."""
import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from sam2_ros.objects import (EventKind, ObjectOptions, ObjectRegistry, RawDetection, Status, apply_detections,
                              greedy_match, parse_detections)
from sam2_ros.objects.assignment import assign
from sam2_ros.objects.motion import BoxMotion
from sam2_ros.objects.reacquire import reacquire_scores

SIZE = (240, 320)  # H, W


def raw(box, class_id="cup", score=0.9):
    x0, y0, x1, y1 = box
    return RawDetection((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, 0.0, ((class_id, score),))


def dets(*items):
    """parse_detections of (box, class) pairs."""
    return parse_detections([raw(b, c) for b, c in items], SIZE)


class BoxTracker:
    """Stands in for StreamingTracker: each object's mask is the box of its last prompt unless a test moves it."""

    def __init__(self):
        self.boxes, self.prompts = {}, []

    @property
    def object_ids(self):
        return list(self.boxes)

    def add_prompt(self, object_id, box=None, stamp=None):
        self.prompts.append((object_id, stamp))
        self.boxes[object_id] = tuple(float(v) for v in box)
        return self.result()

    def remove_object(self, object_id):
        del self.boxes[object_id]

    def result(self, stamp=None):
        ids = list(self.boxes)
        masks = np.zeros((len(ids), *SIZE), bool)
        for k, i in enumerate(ids):
            x0, y0, x1, y1 = (int(round(v)) for v in self.boxes[i])
            masks[k, max(y0, 0):y1, max(x0, 0):x1] = True
        return SimpleNamespace(object_ids=ids, masks=masks)


class World:
    """The node's loop over a registry and a BoxTracker: frame() = track_frame's registry part, array() =
    apply_detections."""

    def __init__(self, **options):
        self.tracker, self.registry = BoxTracker(), ObjectRegistry(ObjectOptions(**options))
        self.t, self.events = 0, []

    def frame(self, presence=None, moved=None):
        """One tracked frame at 30 fps: each object's mask where its box is (moved: {id: box}); presence {id: p}."""
        self.t += 1
        self.tracker.boxes.update(moved or {})
        ids = self.registry.ids
        p = [1.0 if presence is None else presence.get(i, 1.0) for i in ids]
        boxes = [self.tracker.boxes.get(i, (np.nan,) * 4) for i in ids]
        self.events += [(self.t, e) for e in self.registry.update(self.t / 30, ids, p, boxes)]

    def array(self, *items):
        applied = apply_detections(self.tracker, self.registry, dets(*items), self.t, self.t / 30)
        self.events += [(self.t, e) for e in applied.events]
        return applied

    def kinds(self, object_id=None):
        return [(e.object_id, e.kind) for _, e in self.events if object_id in (None, e.object_id)]


# ---------------------------------------------------------------------------------------------- assignment
def test_assignment_is_optimal_one_to_one_and_only_allowed_pairs():
    rng = np.random.default_rng(0)
    for trial in range(300):
        n, m = rng.integers(0, 5), rng.integers(0, 6)
        affinity = rng.random((n, m))
        allowed = rng.random((n, m)) < 0.6
        pairs = assign(affinity, allowed)
        assert len({r for r, _ in pairs}) == len(pairs) == len({c for _, c in pairs})
        assert all(allowed[r, c] for r, c in pairs)
        # brute force: every partial matching on allowed pairs; the most pairs first, then the largest sum
        best = (0, 0.0)
        for k in range(min(n, m) + 1):
            for rows in itertools.combinations(range(n), k):
                for cols in itertools.permutations(range(m), k):
                    if all(allowed[r, c] for r, c in zip(rows, cols)):
                        best = max(best, (k, sum(affinity[r, c] for r, c in zip(rows, cols))))
        got = (len(pairs), sum(affinity[r, c] for r, c in pairs))
        assert got[0] == best[0] and got[1] == pytest.approx(best[1]), (trial, affinity, allowed)


def test_greedy_can_swap_where_the_assignment_does_not():
    # Object 0's mask slid halfway onto detection 1; object 1 overlaps only detection 1 a little less.
    affinity = np.array([[0.6, 0.7], [0.0, 0.65]])
    assert greedy_match(affinity, 0.3) == [(0, 1)]  # best first: object 1 is left without its detection
    assert assign(affinity, affinity >= 0.3) == [(0, 0), (1, 1)]


# ---------------------------------------------------------------------------------------------- motion / score
def test_motion_filter_follows_constant_velocity_and_late_boxes_do_not_change_it():
    motion = BoxMotion.start((0, 0, 20, 20), 0.0)
    for t in range(1, 30):
        motion = motion.update((3 * t, 0, 3 * t + 20, 20), t / 30)  # 90 px/s to the right
    assert motion.velocity[0] == pytest.approx(90, rel=0.02) and abs(motion.velocity[1]) < 1e-6
    np.testing.assert_allclose(motion.predict(1.0), [90, 0, 110, 20], atol=1.0)
    np.testing.assert_allclose(motion.predict(100.0), motion.predict(29 / 30 + 1.0))  # extrapolation is capped
    late = motion.update((0, 0, 20, 20), 0.5)  # a late array's box: position only
    assert late.velocity == motion.velocity and late.stamp == motion.stamp


def test_reacquisition_score_prefers_where_it_left_and_forgives_distance_with_time():
    left = np.array([[280.0, 100, 320, 140]])  # last seen at the right edge, 40 px
    same, far = [280, 100, 320, 140], [0, 100, 40, 140]
    assert reacquire_scores(left, [0.1], [same])[0, 0] == pytest.approx(1.0, abs=0.01)
    threshold = ObjectOptions().reacquire_min_score
    after_long = reacquire_scores(left, [40 / 15], [far])[0, 0]  # the opposite side after 40 frames at 15 fps
    at_once = reacquire_scores(left, [0.0], [[230, 100, 270, 140]])[0, 0]  # a second one next to it at once
    assert at_once < threshold < after_long < 0.9
    looks = reacquire_scores(left, [40 / 15], [far], look=np.array([[0.9]]))[0, 0]
    differs = reacquire_scores(left, [40 / 15], [far], look=np.array([[0.0]]))[0, 0]
    assert differs < after_long < looks  # appearance counts when known
    assert reacquire_scores(left, [1.0], [far], look=np.array([[np.nan]]))[0, 0] == \
        pytest.approx(reacquire_scores(left, [1.0], [far])[0, 0])


# ---------------------------------------------------------------------------------------------- confirmation
CUP, BOOK = (40, 40, 80, 80), (200, 40, 240, 80)


def test_confident_mask_without_detections_is_lost_after_unconfirmed_after_arrays_and_comes_back_by_one():
    w = World(unconfirmed_after=5)
    w.frame()
    w.array((CUP, "cup"), (BOOK, "book"))
    assert w.kinds() == [(1, EventKind.ADDED), (2, EventKind.ADDED)]
    for i in range(15):  # the book is no longer detected; SAM 2 keeps a confident mask of it (presence 1)
        w.frame()
        if i % 3 == 0:  # a 10 Hz detector on a 30 Hz camera: frames without an array count nothing
            w.array((CUP, "cup"))
    lost = [(t, e) for t, e in w.events if e.kind == EventKind.LOST]
    assert [(e.object_id, e.reason) for _, e in lost] == [(2, "not confirmed by the detector for 5 frames")]
    assert lost[0][0] == 14  # the 5th array without it (arrays on frames 2, 5, 8, 11, 14)
    assert w.registry.get(2).status == Status.LOST and w.registry.get(1).status == Status.TRACKED
    for _ in range(5):
        w.frame()  # presence stays high: no FOUND, the detector is the witness
    assert w.registry.get(2).status == Status.LOST and w.kinds(2).count(EventKind.FOUND) == 0
    applied = w.array((CUP, "cup"), (BOOK, "book"))
    assert [(e.object_id, e.kind) for e in applied.events] == [(2, EventKind.REACQUIRED)]
    assert applied.events[0].reason.startswith("detection book 0.90, re-acquisition score")
    assert w.kinds(2) == [(2, EventKind.ADDED), (2, EventKind.LOST), (2, EventKind.REACQUIRED)]
    assert w.registry.ids == [1, 2]


def test_hand_prompted_objects_and_unused_classes_keep_the_presence_rule():
    w = World(unconfirmed_after=2, detection_classes=("cup", "book"))
    w.frame()
    w.tracker.add_prompt(7, box=BOOK)
    w.events.append((w.t, w.registry.prompted(7, w.t / 30, "mug")))  # by hand, labelled
    w.frame()
    w.array((CUP, "cup"), (BOOK, "book"))  # the book detection confirms 7 (no new object)...
    assert w.registry.ids == [7, 1]
    w.registry.options = ObjectOptions(unconfirmed_after=2, detection_classes=("book",))
    for _ in range(6):
        w.frame()
        w.array()  # ...but nothing is assigned now: neither the hand-prompted 7 nor the cup (class unused) is lost
    assert w.kinds() == [(7, EventKind.ADDED), (1, EventKind.ADDED)]
    for _ in range(15):
        w.frame(presence={7: 0.0})
    assert w.kinds(7) == [(7, EventKind.ADDED), (7, EventKind.LOST)]
    w.frame()
    assert w.kinds(7)[-1] == (7, EventKind.FOUND)  # back by itself, as before issue 24


def test_a_silent_detector_gives_detector_objects_back_to_the_presence_rule():
    w = World(lost_after=4)
    w.frame()
    w.array((CUP, "cup"))
    for _ in range(4):
        w.frame(presence={1: 0.0})
    assert w.kinds(1)[-1] == (1, EventKind.LOST)
    w.frame()  # back in view, 5 frames after the last array: the detector has gone quiet
    assert w.kinds(1)[-1] == (1, EventKind.FOUND)


def test_reacquisition_before_creation_far_side_same_id_and_a_second_object_near_a_lost_one_is_new():
    w = World(lost_after=15)
    w.frame()
    w.array(((270, 100, 310, 140), "ball"), (CUP, "cup"))
    for i in range(40):  # the ball leaves on the right; 40 frames at 15 fps
        w.frame(presence={1: 0.0}, moved={})
        w.array((CUP, "cup"))
    assert w.kinds(1) == [(1, EventKind.ADDED), (1, EventKind.LOST)]
    w.frame()
    applied = w.array(((0, 100, 40, 140), "ball"), (CUP, "cup"))  # re-enters on the left
    assert [(e.object_id, e.kind) for e in applied.events] == [(1, EventKind.REACQUIRED)]
    assert w.registry.ids == [1, 2] and applied.plan.new == ()
    # A cup that left a moment ago and another cup appearing beside it: a second cup, not the first one.
    w2 = World(unconfirmed_after=1)
    w2.frame()
    w2.array((CUP, "cup"))
    w2.frame()
    w2.array()
    assert w2.registry.get(1).status == Status.LOST
    w2.frame()
    applied = w2.array(((95, 40, 135, 80), "cup"))
    assert [a.object_id for a in applied.plan.new] == [2] and applied.plan.reacquired == ()


# ---------------------------------------------------------------------------------------------- crossing / drift
def crossing(correction_after=3):
    """Two cups 1 (moving right) and 2 (moving left) on one row, detected every frame; returns the world after
    they met."""
    w = World(correction_after=correction_after)
    w.frame()
    a, b = (20, 100, 60, 140), (260, 100, 300, 140)
    w.array((a, "cup"), (b, "cup"))
    for t in range(1, 22):
        a, b = (20 + 5 * t, 100, 60 + 5 * t, 140), (260 - 5 * t, 100, 300 - 5 * t, 140)
        w.frame(moved={1: a, 2: b})
        w.array((a, "cup"), (b, "cup"))
    return w


def test_crossing_objects_keep_their_ids_when_a_mask_jumps_and_it_is_corrected():
    w = crossing()
    t = 22
    a, b = (20 + 5 * t, 100, 60 + 5 * t, 140), (260 - 5 * t, 100, 300 - 5 * t, 140)  # a = (130..170), b = (150..190)
    w.frame(moved={1: a, 2: a})  # object 2's mask latched onto cup 1 (the front one)
    applied = w.array((a, "cup"), (b, "cup"))
    assert {(x.object_id, x.detection) for x in applied.plan.matched + applied.plan.corrections} == {(1, 0), (2, 1)}
    assert [(x.object_id, x.why) for x in applied.plan.corrections] == [(2, "its mask sits on object 1's detection")]
    assert applied.corrected == (2,) and w.registry.corrections == 1 and w.tracker.boxes[2] == tuple(map(float, b))
    assert w.kinds() == [(1, EventKind.ADDED), (2, EventKind.ADDED)]  # no event: a correction changes no status
    for t in range(23, 40):  # they part again: nothing more to correct
        a, b = (20 + 5 * t, 100, 60 + 5 * t, 140), (260 - 5 * t, 100, 300 - 5 * t, 140)
        w.frame(moved={1: a, 2: b})
        applied = w.array((a, "cup"), (b, "cup"))
        assert [(x.object_id, x.detection) for x in applied.plan.matched] == [(1, 0), (2, 1)]
    assert w.registry.corrections == 1


def test_disagreement_for_correction_after_arrays_reprompts_once_agreeing_objects_never():
    w = World(correction_after=3)
    w.frame()
    w.array((CUP, "cup"), (BOOK, "book"))
    prompts = len(w.tracker.prompts)
    drifted = (40, 40, 80, 140)  # the cup's mask grew down over the table: IoU 0.4 with its detection
    for i in range(3):
        w.frame(moved={1: drifted})
        applied = w.array((CUP, "cup"), (BOOK, "book"))
        assert [x.object_id for x in applied.plan.corrections] == ([1] if i == 2 else [])
    assert applied.plan.corrections[0].why == "mask box IoU 0.40 with its detection for 3 arrays"
    assert w.tracker.prompts[prompts:] == [(1, w.t)] and w.registry.corrections == 1  # the book: never re-prompted
    w.frame()
    assert not w.array((CUP, "cup"), (BOOK, "book")).plan.corrections and w.registry.get(1).disagree == 0


def test_late_array_is_matched_against_that_frames_masks_and_counts_once():
    w = World(unconfirmed_after=3)
    w.tracker.stamps = [1]
    w.frame()
    w.array((CUP, "cup"))
    for _ in range(2):
        w.frame()
        w.array()
    assert w.registry.get(1).status == Status.TRACKED and w.registry.get(1).unconfirmed == 2
    w.array((CUP, "cup"))  # a second array for the same frame (a late one) confirms it
    assert w.registry.get(1).unconfirmed == 0 and w.kinds() == [(1, EventKind.ADDED)]


def test_box_looks_pool_the_feature_grid_under_the_central_half_of_each_box():
    import torch

    from sam2_ros.objects import box_looks

    grid = np.zeros((3, 16, 16))  # [C, h, w] features of a 240 x 320 frame squeezed square
    grid[0, :, :8] = 1.0  # left half "red"
    grid[1, :, 8:] = 1.0  # right half "green"
    grid[2] = 0.1
    boxes = np.array([[0, 0, 120, 240], [200, 0, 320, 240], [150, 0, 170, 240], [5, 5, 5, 9]], float)
    looks = box_looks(grid, boxes, (240, 320))
    np.testing.assert_allclose(looks[0], np.array([1, 0, 0.1]) / np.linalg.norm([1, 0, 0.1]))
    np.testing.assert_allclose(looks[1], np.array([0, 1, 0.1]) / np.linalg.norm([0, 1, 0.1]))
    assert np.isfinite(looks[2]).all() and np.isnan(looks[3]).all()  # a thin box keeps one cell; no area: none
    np.testing.assert_allclose(box_looks(torch.tensor(grid[None], dtype=torch.float32), boxes[:2], (240, 320)),
                               looks[:2], atol=1e-6)
    assert float(looks[0] @ looks[1]) < 0.05  # different colours, nearly orthogonal


def test_a_phantom_lost_by_the_detector_is_removed_after_remove_lost_after_with_one_event_each():
    w = World(unconfirmed_after=3, lost_after=3, remove_lost_after=0.5)
    w.frame()
    w.array((CUP, "cup"), (BOOK, "book"))
    for i in range(30):  # the book is a phantom: confident mask, never detected again; later its presence drops too
        w.frame(presence={2: 0.0} if i > 10 else None)
        for e in w.registry.expire(w.t / 30):
            w.events.append((w.t, e))
            w.tracker.remove_object(e.object_id)
        w.array((CUP, "cup"))
    book = [(t, e.kind, e.reason) for t, e in w.events if e.object_id == 2]
    assert book == [(1, EventKind.ADDED, "detection book 0.90"),
                    (4, EventKind.LOST, "not confirmed by the detector for 3 frames"),
                    (19, EventKind.REMOVED, "lost for 0.5 s")]
    assert w.registry.ids == [1] and w.kinds(1) == [(1, EventKind.ADDED)]
