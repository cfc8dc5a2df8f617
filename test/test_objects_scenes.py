"""Object permanence with the real StreamingTracker and the shipped micro model (models/sam2_micro.pt), ROS-free
(issue 24): the scripted scenes of sam2_ros.sim.scripted run through track_frame / apply_detections (run_synthetic,
the node's loop), scored against the ground truth per frame (sim.metrics.IdentityScore)."""
from pathlib import Path

import pytest

from sam2_ros.model.build import build_sam2
from sam2_ros.objects import EventKind, Status
from sam2_ros.sim import SyntheticDetector, crossing, leave_and_return, run_synthetic
from sam2_ros.sim.scripted import BACK_AT, CROSS_AT, LEAVE_AT
from sam2_ros.tracking import StreamingTracker

CHECKPOINT = Path(__file__).resolve().parents[1] / "models" / "sam2_micro.pt"


@pytest.fixture(scope="module")
def model():
    assert CHECKPOINT.exists(), f"the trained micro checkpoint is missing: {CHECKPOINT}"
    return build_sam2("sam2_micro", checkpoint=CHECKPOINT).eval()


def run(model, scene, frames=None, detector=None, **kw):
    out = run_synthetic(StreamingTracker(model), scene, detector or SyntheticDetector(class_names=scene.labels),
                        frames or scene.frames, **kw)
    assert out.failed == [] and out.skipped == 0
    return out


def events_of(out):
    return [(i, e.object_id, e.kind, e.reason) for i, e in out.events]


@pytest.mark.parametrize("side", ["same", "opposite"])
def test_object_leaving_for_40_frames_comes_back_with_its_id(model, side):
    out = run(model, leave_and_return(side))
    events = events_of(out)
    print(f"\nball out of view on frames {LEAVE_AT}..{BACK_AT - 1}, back on the {side} side: {events}; "
          f"switches {out.identity.switches}, duplicates {out.duplicates}, corrections {out.registry.corrections}")
    assert [(e[1], e[2]) for e in events if e[2] == EventKind.ADDED] == [(1, EventKind.ADDED), (2, EventKind.ADDED),
                                                                         (3, EventKind.ADDED)]
    ball = [e for e in events if e[1] == 3 and e[2] != EventKind.ADDED]
    assert [e[2] for e in ball[:1]] == [EventKind.LOST] and len(ball) == 2, "one LOST, one back"
    assert ball[1][2] in (EventKind.REACQUIRED, EventKind.FOUND) and BACK_AT <= ball[1][0] <= BACK_AT + 4
    assert LEAVE_AT <= ball[0][0] < BACK_AT
    assert len(events) == 5 and out.registry.ids == [1, 2, 3], "no other event, no extra object"
    assert out.identity.switches == 0 and out.duplicates == 0
    assert out.identity.pairs[-1] == {1: 1, 2: 2, 3: 3}, "the ball is object 3 again, on the ground truth"
    assert all(out.registry.get(i).look is not None for i in (1, 2, 3)), "appearance vectors were kept"


def test_two_cups_crossing_keep_their_ids(model):
    scene = crossing()
    out = run(model, scene)
    print(f"\ncrossing at frame {CROSS_AT}: events {events_of(out)}, switches {out.identity.switches}, corrections "
          f"{out.registry.corrections}, mean J {out.mean_j:.3f}")
    assert out.identity.switches == 0 and out.duplicates == 0 and out.registry.ids == [1, 2]
    for i, pairs in enumerate(out.identity.pairs):  # on every frame either cup is paired, it is with its own id
        assert all(truth == pred for truth, pred in pairs.items()), (i, pairs)
    assert out.identity.pairs[-1] == {1: 1, 2: 2}
    assert [e[2] for e in events_of(out)] == [EventKind.ADDED, EventKind.ADDED]


def test_confident_mask_the_detector_no_longer_sees_is_lost_after_unconfirmed_after(model):
    scene = crossing()
    detector = SyntheticDetector(class_names=scene.labels, withheld={1: range(5, 40)})
    out = run(model, scene, frames=22, detector=detector)
    events = events_of(out)
    print(f"\ncup 1 withheld by the detector from frame 5: {events}")
    assert events[2:] == [(19, 1, EventKind.LOST, "not confirmed by the detector for 15 frames")]
    assert out.status[-1] == {1: Status.LOST, 2: Status.TRACKED}


def test_a_10_hz_detector_a_frame_late_loses_nothing_falsely(model):
    out = run(model, leave_and_return("same"), detect_every=3, lag=1)
    events = events_of(out)
    print(f"\ndetector on every 3rd frame, one frame late: {events}")
    assert [e for e in events if e[1] != 3 and e[2] != EventKind.ADDED] == [], "cup and box never LOST"
    assert [e[2] for e in events if e[1] == 3] == [EventKind.ADDED, EventKind.LOST, EventKind.REACQUIRED]
    assert out.identity.switches == 0 and out.duplicates == 0
