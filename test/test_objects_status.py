"""Object status and events without ROS (sam2_ros.objects.ObjectRegistry): TRACKED / OCCLUDED / LOST per frame, one
event per transition over long sequences, FOUND vs REACQUIRED, remove_lost_after in the frames' own time, labels,
options changed at run time, bounded state, and the numbers agreeing with the generated messages."""
import pickle

import numpy as np
import pytest

from sam2_ros.objects import Event, EventKind, ObjectOptions, ObjectRegistry, Status

BOX = (10.0, 10.0, 50.0, 50.0)
NO_BOX = [np.nan] * 4


def feed(reg, presence_seq, object_id=1, t0=0.0, dt=0.1, box=BOX):
    """One frame per presence value; returns (statuses, events) per frame."""
    statuses, events = [], []
    for i, p in enumerate(presence_seq):
        ev = reg.update(t0 + i * dt, [object_id], [p], [box if p >= reg.options.presence_threshold else NO_BOX])
        statuses.append(reg.get(object_id).status)
        events.append(ev)
    return statuses, events


def runs_of_low(presence, threshold):
    """Lengths of the maximal runs of consecutive frames with presence < threshold."""
    runs, n = [], 0
    for p in presence:
        if p < threshold:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs + ([n] if n else [])


def test_constants_equal_the_generated_messages():
    msg = pytest.importorskip("sam2_ros.msg", reason="generated messages not built (run make setup)")
    assert (Status.TRACKED, Status.OCCLUDED, Status.LOST) == \
           (msg.ObjectMask.STATUS_TRACKED, msg.ObjectMask.STATUS_OCCLUDED, msg.ObjectMask.STATUS_LOST)
    assert [int(k) for k in EventKind] == [msg.ObjectEvent.ADDED, msg.ObjectEvent.LOST, msg.ObjectEvent.FOUND,
                                           msg.ObjectEvent.REACQUIRED, msg.ObjectEvent.REMOVED]
    assert [k.name for k in EventKind] == ["ADDED", "LOST", "FOUND", "REACQUIRED", "REMOVED"]
    assert {s.name for s in Status} == {n[len("STATUS_"):] for n in dir(msg.ObjectMask) if n.startswith("STATUS_")}


@pytest.mark.parametrize("lost_after", [1, 3, 15])
def test_lost_after_exactly_lost_after_occluded_frames_and_one_event(lost_after):
    reg = ObjectRegistry(ObjectOptions(lost_after=lost_after))
    added = reg.add(1, 0.0, "cup", 0.9, "detection cup 0.90", BOX)
    assert added == Event(0.0, 1, "cup", EventKind.ADDED, "detection cup 0.90")
    statuses, events = feed(reg, [0.9] * 5 + [0.1] * (lost_after + 200))
    assert statuses[:5] == [Status.TRACKED] * 5
    assert statuses[5:5 + lost_after - 1] == [Status.OCCLUDED] * (lost_after - 1)
    assert statuses[5 + lost_after - 1:] == [Status.LOST] * 201
    flat = [(i, e) for i, ev in enumerate(events) for e in ev]
    assert len(flat) == 1
    i, event = flat[0]
    assert i == 5 + lost_after - 1 and event.kind == EventKind.LOST and event.label == "cup"
    assert event.reason == f"lost for {lost_after} frames" and event.stamp == pytest.approx(0.1 * i)


def test_occlusions_shorter_than_lost_after_never_lose_the_object():
    reg = ObjectRegistry(ObjectOptions(lost_after=15))
    reg.add(1, 0.0)
    statuses, events = feed(reg, ([0.2] * 14 + [0.8]) * 50)
    assert not any(events)
    assert set(statuses) == {Status.OCCLUDED, Status.TRACKED}


def test_found_by_tracking_alone_once_per_return():
    reg = ObjectRegistry(ObjectOptions(lost_after=4))
    reg.add(1, 0.0)
    statuses, events = feed(reg, [0.9] * 3 + [0.0] * 10 + [0.9] * 10 + [0.0] * 4 + [0.95] * 3)
    kinds = [(i, e.kind, e.reason) for i, ev in enumerate(events) for e in ev]
    assert kinds == [(6, EventKind.LOST, "lost for 4 frames"), (13, EventKind.FOUND, "found after 10 frames"),
                     (26, EventKind.LOST, "lost for 4 frames"), (27, EventKind.FOUND, "found after 4 frames")]
    assert statuses[13] == Status.TRACKED and statuses[26] == Status.LOST


def test_long_random_sequence_one_event_per_transition():
    rng = np.random.default_rng(0)
    lost_after = 6
    reg = ObjectRegistry(ObjectOptions(lost_after=lost_after, presence_threshold=0.5))
    for object_id in (1, 2, 3):
        reg.add(object_id, 0.0)
    # Runs of random lengths (1..20) of visible / occluded frames, independently per object, 5000 frames.
    presence = np.zeros((3, 5000))
    for row in presence:
        i = 0
        while i < row.size:
            n = int(rng.integers(1, 21))
            row[i:i + n] = rng.uniform(0.5, 1.0) if rng.random() < 0.5 else rng.uniform(0.0, 0.4999)
            i += n
    events = []
    for t in range(5000):
        boxes = np.where((presence[:, t] >= 0.5)[:, None], np.array(BOX), np.nan)
        events += reg.update(t / 30, [1, 2, 3], presence[:, t], boxes)
    for k, object_id in enumerate((1, 2, 3)):
        own = [e.kind for e in events if e.object_id == object_id]
        runs = runs_of_low(presence[k], 0.5)
        long_runs = sum(r >= lost_after for r in runs)
        ended = long_runs - (1 if runs and presence[k, -1] < 0.5 and runs[-1] >= lost_after else 0)
        assert own.count(EventKind.LOST) == long_runs
        assert own.count(EventKind.FOUND) == ended
        assert own == [EventKind.LOST, EventKind.FOUND] * ended + [EventKind.LOST] * (long_runs - ended)
        assert long_runs >= 20  # the sequence really exercised the rule


def test_reacquired_through_a_detection_vs_found():
    reg = ObjectRegistry(ObjectOptions(lost_after=2))
    reg.add(1, 0.0, "cup", 0.9, box=BOX)
    feed(reg, [0.0, 0.0])
    assert reg.get(1).status == Status.LOST
    event = reg.reacquire(1, 3.0, box=(20, 20, 60, 60), score=0.7, reason="detection cup 0.70")
    assert event == Event(3.0, 1, "cup", EventKind.REACQUIRED, "detection cup 0.70")
    info = reg.get(1)
    assert (info.status, info.occluded_frames, info.label_score, info.box) == (Status.TRACKED, 0, 0.7,
                                                                                (20.0, 20.0, 60.0, 60.0))
    # Re-prompting an object that is not LOST is no transition: no event.
    assert reg.reacquire(1, 3.1, box=BOX, score=0.8) is None
    _, events = feed(reg, [0.9] * 5, t0=4.0)
    assert not any(events)  # it came back through the detection, not by itself: no FOUND afterwards


def test_prompts_add_relabel_and_reacquire():
    reg = ObjectRegistry(ObjectOptions(lost_after=1))
    assert reg.prompted(4, 0.0, "mug", "~/click") == Event(0.0, 4, "mug", EventKind.ADDED, "~/click")
    assert reg.prompted(4, 0.1, "cup") is None and reg.get(4).label == "cup"
    assert reg.prompted(4, 0.2) is None and reg.get(4).label == "cup"  # no label given: kept
    reg.update(0.3, [4], [0.0], [NO_BOX])
    event = reg.prompted(4, 0.4, source="~/prompt")
    assert event.kind == EventKind.REACQUIRED and event.reason == "~/prompt"


def test_labels_and_scores_in_publishing_order():
    reg = ObjectRegistry()
    reg.add(2, 0.0, "cup", 0.91)
    reg.add(5, 0.0)
    reg.set_label(5, "plate")
    labels, scores, status = reg.columns([5, 2, 7])
    assert labels == ["plate", "cup", ""]
    np.testing.assert_allclose(scores, [0.0, 0.91, 0.0], rtol=1e-6)
    assert scores.dtype == np.float32 and status.dtype == np.uint8 and status.tolist() == [0, 0, 0]


def test_remove_lost_after_in_frame_time():
    reg = ObjectRegistry(ObjectOptions(lost_after=3, remove_lost_after=2.0))
    reg.add(1, 100.0, "cup")
    reg.add(2, 100.0, "book")
    events = []
    for i in range(60):  # 8 Hz from t = 100 s; object 1 occluded from the first frame, object 2 always visible
        t = 100.0 + 0.125 * i
        removed = reg.expire(t)
        events += [(i, e) for e in removed]
        ids = reg.ids
        events += [(i, e) for e in reg.update(t, ids, [0.0 if o == 1 else 0.9 for o in ids],
                                              [NO_BOX if o == 1 else BOX for o in ids])]
    kinds = [(i, e.object_id, e.kind, e.reason) for i, e in events]
    # LOST on frame 2 (t = 100.25); removed on the first frame 2 s later (t = 102.25, frame 18), before tracking it.
    assert kinds == [(2, 1, EventKind.LOST, "lost for 3 frames"), (18, 1, EventKind.REMOVED, "lost for 2.0 s")]
    assert reg.ids == [2]


def test_remove_lost_after_zero_never_removes_and_stamps_going_back_restart_the_clock():
    reg = ObjectRegistry(ObjectOptions(lost_after=1))
    reg.add(1, 0.0)
    reg.update(0.0, [1], [0.0], [NO_BOX])
    assert reg.expire(1e9) == [] and reg.ids == [1]
    reg.options = ObjectOptions(lost_after=1, remove_lost_after=5.0)  # changed at run time: applies at once
    assert [e.kind for e in reg.expire(5.0)] == [EventKind.REMOVED]
    reg.add(1, 10.0)
    reg.update(10.0, [1], [0.0], [NO_BOX])
    assert reg.expire(2.0) == []  # a replayed bag: the clock restarts at 2.0
    assert reg.expire(6.9) == [] and [e.reason for e in reg.expire(7.0)] == ["lost for 5.0 s"]


def test_remove_and_reset_give_one_event_each_and_bad_ids_change_nothing():
    reg = ObjectRegistry()
    for object_id, label in ((1, "cup"), (2, ""), (3, "book")):
        reg.add(object_id, 0.0, label)
    assert reg.remove(2, 1.0) == Event(1.0, 2, "", EventKind.REMOVED, "~/remove_object")
    with pytest.raises(ValueError, match="unknown object id 2"):
        reg.remove(2, 1.0)
    with pytest.raises(ValueError, match="already exists"):
        reg.add(1, 1.0)
    with pytest.raises(ValueError, match=">= 1"):
        reg.add(0, 1.0)
    assert reg.ids == [1, 3]
    events = reg.reset(2.0)
    assert [(e.object_id, e.label, e.kind, e.reason) for e in events] == \
           [(1, "cup", EventKind.REMOVED, "~/reset"), (3, "book", EventKind.REMOVED, "~/reset")]
    assert len(reg) == 0 and reg.reset(3.0) == []


def test_update_checks_lengths_and_ignores_unknown_ids():
    reg = ObjectRegistry()
    reg.add(1, 0.0)
    with pytest.raises(ValueError, match="presence"):
        reg.update(0.0, [1], [0.9, 0.9], [BOX])
    assert reg.update(0.0, [7, 1], [0.0, 0.9], [NO_BOX, BOX]) == [] and reg.ids == [1]
    reg.add(2, 0.0)
    reg.update(0.1, [1], [0.0], [NO_BOX])  # object 2 has no output on this frame: unchanged
    assert reg.get(2).occluded_frames == 0 and reg.get(1).occluded_frames == 1


def test_box_follows_the_mask_and_freezes_while_lost():
    reg = ObjectRegistry(ObjectOptions(lost_after=2))
    reg.add(1, 0.0, box=BOX)
    reg.update(0.1, [1], [0.9], [(12, 12, 52, 52)])
    assert reg.get(1).box == (12, 12, 52, 52)
    reg.update(0.2, [1], [0.2], [(14, 14, 40, 40)])  # occluded, partly visible: still where it is seen
    assert reg.get(1).box == (14, 14, 40, 40)
    reg.update(0.3, [1], [0.2], [(200, 200, 220, 220)])  # LOST: a stray mask is not where the object is
    reg.update(0.4, [1], [0.2], [NO_BOX])
    assert reg.get(1).status == Status.LOST and reg.get(1).box == (14, 14, 40, 40)


def test_options_are_checked_and_replaced_as_a_whole():
    reg = ObjectRegistry()
    reg.add(1, 0.0)
    reg.update(0.0, [1], [0.6], [BOX])
    assert reg.get(1).status == Status.TRACKED
    reg.options = ObjectOptions(presence_threshold=0.7)
    reg.update(0.1, [1], [0.6], [BOX])
    assert reg.get(1).status == Status.OCCLUDED
    for bad in (dict(lost_after=0), dict(lost_after=1.5), dict(presence_threshold=1.5),
                dict(detection_min_score=float("nan")), dict(detection_match_iou=0.0), dict(remove_lost_after=-1.0),
                dict(remove_lost_after=float("inf")), dict(detection_classes="cup"), dict(detection_classes=[3]),
                dict(max_objects=0), dict(lost_after=True)):
        with pytest.raises(ValueError):
            ObjectOptions(**bad)
    with pytest.raises(ValueError, match="ObjectOptions"):
        reg.options = {"lost_after": 3}
    assert reg.options.presence_threshold == 0.7
    assert ObjectOptions(detection_classes=["cup"]).detection_classes == ("cup",)
    defaults = ObjectOptions()
    assert (defaults.detection_classes, defaults.detection_min_score, defaults.detection_match_iou,
            defaults.presence_threshold, defaults.lost_after, defaults.remove_lost_after) == \
           ((), 0.5, 0.3, 0.5, 15, 0.0)


def test_state_stays_bounded_over_many_frames():
    reg = ObjectRegistry(ObjectOptions(lost_after=5))
    for object_id in range(1, 17):
        reg.add(object_id, 0.0, f"class{object_id}", 0.9, box=BOX)
    ids = reg.ids
    presence = np.tile([0.9, 0.1], 8)  # half visible, half occluded (and soon LOST), every frame

    def run(frames, t0):
        for t in range(frames):
            shifted = np.roll(presence, t // 50)  # [16] each object alternates visible / occluded every 50 frames
            reg.update(t0 + t / 30, ids, shifted, np.where(shifted[:, None] >= 0.5, np.array(BOX), np.nan))
        return len(pickle.dumps(reg))

    small = run(100, 0.0)
    large = run(20000, 10.0)
    assert abs(large - small) < 64, (small, large)  # a few digits of counters and stamps, nothing per frame
