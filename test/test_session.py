"""The ROS-free TrackingSession: the rules about frames, prompts and detections, without DDS or a node. The real
StreamingTracker with the shipped micro model; the session's methods are called as its inference thread would (the
worker is not started, so `track` and the `apply_*` calls run here, in order)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sam2_ros.model.build import build_sam2
from sam2_ros.objects import EventKind, ObjectOptions
from sam2_ros.session import PromptError, PromptRequest, SessionOptions, TrackingSession
from sam2_ros.session.worker import ReceivedFrame
from sam2_ros.sim import SyntheticDetector, SyntheticScene
from sam2_ros.tracking import StreamingTracker

CHECKPOINT = Path(__file__).resolve().parents[1] / "models" / "sam2_micro.pt"
SCENE = SyntheticScene(120, 160, num_objects=3, seed=2)
S = 1_000_000_000


class Recorder:
    """SessionOutputs that keeps everything (what the node would publish)."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, list[int]]] = []  # (stamp_ns, object ids) per tracked frame
        self.events: list[tuple[int, EventKind, str]] = []
        self.republished = 0
        self.forgot_count = 0
        self.warnings: list[tuple[str, str]] = []
        self.before = 0

    def before_track(self, frame):
        self.before += 1

    def tracked(self, frame, result, events, inference_ms):
        assert inference_ms >= 0
        self.frames.append((frame.stamp_ns, list(result.object_ids)))
        self.publish_events(events, frame)

    def publish(self, frame, result, want_masks=False):
        self.republished += 1
        return ("masks", frame.stamp_ns, list(result.object_ids)) if want_masks else None

    def publish_events(self, events, frame):
        self.events += [(e.object_id, e.kind, e.reason) for e in events]

    def forgot(self):
        self.forgot_count += 1

    def warn(self, kind, text, warning=True):
        self.warnings.append((kind, text))


@pytest.fixture(scope="module")
def model():
    return build_sam2("sam2_micro", checkpoint=CHECKPOINT).eval()


def make(model, **options):
    out = Recorder()
    rules = ObjectOptions(max_objects=options.pop("max_objects", 16))
    return TrackingSession(StreamingTracker(model), out, rules, SessionOptions(**options)), out


def feed(session, index: int, stamp_ns: int) -> ReceivedFrame:
    """What the worker does with a received frame: track it, then keep it in the history."""
    frame = ReceivedFrame(stamp_ns=stamp_ns, header=None, rgb=SCENE.frame(index).rgb, seq=index + 1)
    session.track(frame)
    with session.worker._cond:  # the worker's own bookkeeping after a tracked frame
        session.worker._history.append(frame)
        session.worker.frames_done += 1
    return frame


def box_request(object_id: int, index: int, k: int, stamp_ns: int = 0, label: str = "") -> PromptRequest:
    box = np.array(SCENE.frame(index).box(k), np.float64)
    return PromptRequest(object_id, np.zeros((0, 2)), np.zeros(0, np.int64), box, stamp_ns=stamp_ns, label=label)


def test_a_prompt_needs_a_frame_and_says_which_is_missing(model):
    session, out = make(model)
    with pytest.raises(PromptError, match="no image received yet: a prompt"):
        session.apply_prompt(box_request(1, 0, 0), None, True)
    frame = feed(session, 0, 10 * S)
    answer = session.apply_prompt(box_request(1, 0, 0, label="cup"), frame, True)
    assert answer.masks == ("masks", 10 * S, [1]) and answer.label == "cup" and answer.ms > 0
    assert out.events == [(1, EventKind.ADDED, "prompt")]
    session.forget(frame, "~/reset")
    with pytest.raises(PromptError, match="no frame arrived since the reset: a prompt .* 1 frames before"):
        session.apply_prompt(box_request(1, 0, 0), None, True)
    assert out.forgot_count == 1 and out.events[-1] == (1, EventKind.REMOVED, "~/reset")


def test_a_prompt_on_a_stamp_not_in_the_history_says_so(model):
    session, _ = make(model)
    frame = feed(session, 0, 10 * S)
    answer = session.apply_prompt(box_request(2, 0, 1, stamp_ns=3 * S), frame, found=False)
    assert f"stamp {3 * S} is not among the last 8 frames: applied to the newest" in answer.message


def test_max_objects_refusal_is_taken_back_from_the_tracker(model):
    """The session's own check refuses a third object; a registry refusal after the tracker took the prompt (the
    limit lowered meanwhile) removes the object from the tracker again, so both keep the same objects."""
    session, _ = make(model, max_objects=2)
    frame = feed(session, 0, 10 * S)
    session.apply_prompt(box_request(1, 0, 0), frame, True)
    session.apply_prompt(box_request(2, 0, 1), frame, True)
    with pytest.raises(PromptError, match="already tracking max_objects=2"):
        session.apply_prompt(box_request(3, 0, 2), frame, True)
    session.registry.options = ObjectOptions(max_objects=1)  # as a parameter change from another thread would
    session.remove_object(2, frame)
    with pytest.raises(ValueError, match="max_objects=1"):
        session.object_prompted(1, frame)  # known: fine
        session.tracker.add_prompt(3, box=np.array(SCENE.frame(0).box(2), np.float64), stamp=frame.seq)
        session.object_prompted(3, frame)
    assert 3 not in session.tracker.object_ids and 3 not in session.registry


def test_time_jump_resets_once_and_small_reorderings_do_not(model):
    session, out = make(model, time_jump_reset=1.0)
    frame = feed(session, 0, 100 * S)
    session.apply_prompt(box_request(1, 0, 0), frame, True)
    feed(session, 1, 100 * S + S // 2)
    feed(session, 2, 100 * S + S // 10)  # 0.4 s back: no reset
    assert out.forgot_count == 0 and session.registry.ids == [1]
    feed(session, 3, 98 * S)  # 2.1 s back: one reset, on this frame
    assert out.forgot_count == 1 and session.registry.ids == [] and session.tracker.object_ids == []
    assert out.events[-1][1] == EventKind.REMOVED and "time jump: stamps went back 2.10 s" in out.events[-1][2]
    assert [k for k, _ in out.warnings] == ["time jump"]
    feed(session, 4, 0)  # no clock: nothing
    feed(session, 5, 98 * S + S // 10)
    assert out.forgot_count == 1 and out.frames[-1] == (98 * S + S // 10, [])


def test_time_jump_reset_0_never_resets(model):
    session, out = make(model, time_jump_reset=0.0)
    feed(session, 0, 100 * S)
    feed(session, 1, 10 * S)
    assert out.forgot_count == 0 and not out.warnings


def test_detections_flow_through_the_session(model):
    """Detection arrays make one labelled object per shape on the frame they name, confirm them later, and say in
    the log when an array names no tracked frame; a malformed one is set aside with a reason."""
    session, out = make(model)
    detector = SyntheticDetector(seed=0)
    with pytest.raises(PromptError, match="no image received yet: a detection array"):
        session.apply_detections([], 0, None, True)
    frames = [feed(session, i, (10 + i) * S) for i in range(3)]
    raws = [d.raw for d in detector.detect(SCENE.frame(1))]
    applied = session.apply_detections(raws, frames[1].stamp_ns, frames[1], True)
    assert [a.object_id for a in applied.plan.new] == [1, 2, 3] and applied.failed == ()
    assert [(i, k) for i, k, _ in out.events] == [(1, EventKind.ADDED), (2, EventKind.ADDED), (3, EventKind.ADDED)]
    assert [session.registry.get(i).label for i in (1, 2, 3)] == [detector.class_of(k) for k in (1, 2, 3)]
    feed(session, 3, 13 * S)
    late = session.apply_detections([d.raw for d in detector.detect(SCENE.frame(3))] + [raws[0]._replace(size_x=-1)],
                                    99 * S, session.newest(), False)
    assert late.plan.new == () and len(late.plan.skipped) == 1
    kinds = [k for k, _ in out.warnings]
    assert "detections late" in kinds and "detections skipped" in kinds
    assert session.tracker.object_ids == session.registry.ids == [1, 2, 3]


def test_remove_and_unknown_remove(model):
    session, out = make(model)
    frame = feed(session, 0, 10 * S)
    session.apply_prompt(box_request(4, 0, 0), frame, True)
    assert session.remove_object(4, frame) == "object 4 removed"
    assert out.events[-1] == (4, EventKind.REMOVED, "~/remove_object")
    with pytest.raises(PromptError, match=r"unknown object id 4 \(tracked: none\)"):
        session.remove_object(4, frame)
