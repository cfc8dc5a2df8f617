"""StreamingTracker's API: late prompts by stamp, results, removal, reset, and validation that changes nothing.

Our model with the micro config (not a Meta model; SAM 2.1 structure, ~0.85 M parameters, weights sharpened so
masks have edges) at image_size 128, on generated frames; exactness against Meta is test_tracker_exact.py.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from oracle_backend import CachedEncoder, make_video, sharpen_
from sam2_ros.backends.base import InferenceBackend
from sam2_ros.backends.torch_backend import TorchBackend
from sam2_ros.model import build_sam2
from sam2_ros.tracking import StreamingTracker, TrackerOptions, TrackResult

SIZE = 128


@pytest.fixture(scope="module")
def backend():
    torch.manual_seed(0)
    return CachedEncoder(TorchBackend(sharpen_(build_sam2("sam2_micro", image_size=SIZE))))


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return make_video(str(tmp_path_factory.mktemp("api_video")), 12, SIZE)


def prompt(tracker, event, stamp):
    kind, obj_id, payload = event
    if kind == "box":
        return tracker.add_prompt(obj_id, box=payload, stamp=stamp)
    return tracker.add_prompt(obj_id, points=payload[0], labels=payload[1], stamp=stamp)


def test_late_prompt_equals_prompt_at_the_time(backend, frames):
    """Prompts on frame 4 given after frame 8 (by stamp) = the same prompts given right after frame 4, including
    a correction on frame 6 that was given on time and is replayed after the late prompt."""
    at4 = [("points", 2, ([[60.0, 95.0]], [1])), ("points", 1, ([[40.0, 30.0]], [0]))]
    at6 = ("points", 1, ([[30.0, 40.0]], [1]))
    stamp = lambda f: 1000 + 10 * f  # noqa: E731
    on_time, late = StreamingTracker(backend), StreamingTracker(backend)
    expected, got = {}, {}
    for f, rgb in enumerate(frames):
        expected[f] = on_time.track(rgb, stamp(f))
        if f == 0:
            expected[f] = prompt(on_time, ("box", 1, [10.0, 10.0, 70.0, 60.0]), None)
        if f == 4:
            for event in at4:
                expected[f] = prompt(on_time, event, stamp(f))
        if f == 6:
            expected[f] = prompt(on_time, at6, stamp(f))
    for f, rgb in enumerate(frames):
        late.track(rgb, stamp(f))
        if f == 0:
            prompt(late, ("box", 1, [10.0, 10.0, 70.0, 60.0]), None)
        if f == 6:
            prompt(late, at6, stamp(f))
        if f == 8:
            for event in at4:
                result = prompt(late, event, stamp(4))
            assert result.stamp == stamp(4)
            got[4] = result
            for g in (5, 6, 7, 8):
                got[g] = late.result(stamp(g))
        if f > 8:
            got[f] = late.result()
    worst = 0.0
    for f, result in got.items():
        assert result.object_ids == expected[f].object_ids == [1, 2]
        diff = float(np.abs(result.mask_logits - expected[f].mask_logits).max())
        worst = max(worst, diff)
        print(f"frame {f}: late vs on-time max |dlogit| {diff:.2e}")
        assert diff <= 1e-4
        np.testing.assert_allclose(result.iou, expected[f].iou, atol=1e-5)
        np.testing.assert_allclose(result.presence, expected[f].presence, atol=1e-5)
    print(f"late prompt: worst max |dlogit| {worst:.2e}")


def test_result_fields_on_a_non_square_frame(backend):
    tracker = StreamingTracker(backend)
    rgb = np.random.default_rng(1).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    empty = tracker.track(rgb)
    assert empty.object_ids == [] and empty.masks.shape == (0, 90, 160) and empty.stamp == 0
    r = tracker.add_prompt(3, points=[[100, 40]], labels=[1])
    r = tracker.add_prompt(5, mask=np.pad(np.ones((30, 40), bool), ((10, 50), (20, 100))))
    assert isinstance(r, TrackResult) and r.object_ids == [3, 5] and len(r) == 2
    assert r.masks.shape == r.mask_logits.shape == (2, 90, 160)
    assert r.masks.dtype == bool and r.mask_logits.dtype == np.float32
    assert r.iou.shape == r.presence.shape == (2,) and r.iou.dtype == r.presence.dtype == np.float32
    assert np.all((r.presence >= 0) & (r.presence <= 1))
    assert np.array_equal(r.masks, r.mask_logits > 0)
    assert r.masks[1, 10:40, 20:60].mean() > 0.9 and r.masks[1, 60:, :].mean() < 0.1  # mask prompt taken as output
    assert r.presence[1] > 0.99 and r.iou[1] == 1.0
    r = tracker.track(rgb)
    assert r.stamp == 1 and r.object_ids == [3, 5]
    assert isinstance(backend, InferenceBackend)


def test_remove_object_leaves_others_alone(backend, frames):
    both, alone = StreamingTracker(backend), StreamingTracker(backend)
    for f, rgb in enumerate(frames[:6]):
        rb, ra = both.track(rgb, f), alone.track(rgb, f)
        if f == 0:
            both.add_prompt(1, points=[[30, 30]], labels=[1])
            both.add_prompt(2, points=[[90, 90]], labels=[1])
            alone.add_prompt(2, points=[[90, 90]], labels=[1])
        if f == 3:
            both.remove_object(1)
            assert both.object_ids == [2]
    assert rb.object_ids == ra.object_ids == [2]
    diff = float(np.abs(rb.mask_logits - ra.mask_logits).max())
    print(f"object 2 with object 1 removed vs tracked alone: max |dlogit| {diff:.2e}")
    assert diff <= 1e-4


def test_reset_and_stamps(backend, frames, caplog):
    tracker = StreamingTracker(backend, TrackerOptions(history=3))
    for f in range(5):
        tracker.track(frames[f], stamp=f * 0.5)
    assert tracker.stamps == [1.0, 1.5, 2.0]
    with caplog.at_level(logging.WARNING, logger="sam2_ros.tracking.tracker"):
        r = tracker.add_prompt(1, points=[[30, 30]], labels=[1], stamp=0.5)  # left the history
    assert r.stamp == 2.0 and "not in the frame history" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sam2_ros.tracking.tracker"):
        r = tracker.add_prompt(2, points=[[30, 30]], labels=[1], stamp=7)  # never seen
    assert r.stamp == 2.0 and "not in the frame history" in caplog.text
    r = tracker.add_prompt(3, points=[[50, 30]], labels=[1], stamp=1.5)  # a history frame: no warning
    assert r.stamp == 1.5 and r.object_ids == [3]
    assert tracker.result().object_ids == [1, 2, 3]
    tracker.reset()
    assert tracker.object_ids == [] and tracker.stamps == [] and tracker.memory_bytes() < 2**20
    assert tracker.track(frames[0], stamp=0).object_ids == []  # a new stream may restart its stamps


def fingerprint(tracker: StreamingTracker) -> tuple:
    """Everything observable about the state: ids, stamps, per-object frames, tensor bytes, newest logits."""
    banks = tuple((i, tuple(sorted(o.cond)), tuple(sorted(o.recent)), tuple(sorted(o.prompts)),
                   tuple((k, v[0].shape[0]) for k, v in sorted(o.points.items())))
                  for i, o in tracker._objects.items())
    newest = tracker.result() if tracker.stamps else None
    return (tuple(tracker.object_ids), tuple(tracker.stamps), banks, tracker.memory_bytes(),
            None if newest is None else newest.mask_logits.tobytes())


BAD_PROMPTS = {
    "nan point": dict(object_id=1, points=[[np.nan, 3.0]], labels=[1]),
    "inf point": dict(object_id=1, points=[[np.inf, 3.0]], labels=[1]),
    "point right of image": dict(object_id=1, points=[[200.0, 3.0]], labels=[1]),
    "point above image": dict(object_id=1, points=[[3.0, -1.0]], labels=[1]),
    "labels/points length": dict(object_id=1, points=[[3.0, 3.0], [4.0, 4.0]], labels=[1]),
    "labels without points": dict(object_id=1, labels=[1]),
    "points without labels": dict(object_id=1, points=[[3.0, 3.0]]),
    "label value": dict(object_id=1, points=[[3.0, 3.0]], labels=[2]),
    "empty prompt": dict(object_id=1),
    "empty points": dict(object_id=1, points=np.zeros((0, 2)), labels=np.zeros(0)),
    "points shape": dict(object_id=1, points=[[1.0, 2.0, 3.0]], labels=[1]),
    "box inverted": dict(object_id=1, box=[50.0, 10.0, 20.0, 40.0]),
    "box flat": dict(object_id=1, box=[10.0, 10.0, 40.0, 10.0]),
    "box shape": dict(object_id=1, box=[10.0, 10.0, 40.0]),
    "box nan": dict(object_id=1, box=[10.0, np.nan, 40.0, 40.0]),
    "box outside": dict(object_id=1, box=[10.0, 10.0, 400.0, 40.0]),
    "mask size": dict(object_id=1, mask=np.ones((SIZE, SIZE + 1), bool)),
    "mask with points": dict(object_id=1, mask=np.ones((SIZE, SIZE), bool), points=[[3.0, 3.0]], labels=[1]),
    "object id 0": dict(object_id=0, points=[[3.0, 3.0]], labels=[1]),
    "object id negative": dict(object_id=-2, points=[[3.0, 3.0]], labels=[1]),
    "object id float": dict(object_id=1.5, points=[[3.0, 3.0]], labels=[1]),
    "object id bool": dict(object_id=True, points=[[3.0, 3.0]], labels=[1]),
    "stamp nan": dict(object_id=1, points=[[3.0, 3.0]], labels=[1], stamp=float("nan")),
    "replace not bool": dict(object_id=1, points=[[3.0, 3.0]], labels=[1], replace="yes"),
}


@pytest.fixture(scope="module")
def busy_tracker(backend, frames):
    tracker = StreamingTracker(backend)
    for f in range(4):
        tracker.track(frames[f], stamp=f)
        if f == 1:
            tracker.add_prompt(1, points=[[30, 30]], labels=[1])
            tracker.add_prompt(2, box=[60, 60, 100, 110])
    return tracker


@pytest.mark.parametrize("case", sorted(BAD_PROMPTS))
def test_bad_prompt_raises_and_changes_nothing(busy_tracker, case):
    before = fingerprint(busy_tracker)
    with pytest.raises(ValueError) as err:
        busy_tracker.add_prompt(**BAD_PROMPTS[case])
    print(f"{case}: {err.value}")
    assert fingerprint(busy_tracker) == before


def test_bad_calls_raise_and_change_nothing(busy_tracker, frames):
    before = fingerprint(busy_tracker)
    bad_calls = {
        "remove unknown id": lambda: busy_tracker.remove_object(9),
        "remove id 0": lambda: busy_tracker.remove_object(0),
        "float image": lambda: busy_tracker.track(frames[4].astype(np.float32), stamp=10),
        "grey image": lambda: busy_tracker.track(frames[4][..., 0], stamp=10),
        "empty image": lambda: busy_tracker.track(np.zeros((0, 5, 3), np.uint8), stamp=10),
        "list image": lambda: busy_tracker.track(frames[4].tolist(), stamp=10),
        "stamp not increasing": lambda: busy_tracker.track(frames[4], stamp=3),
        "stamp nan": lambda: busy_tracker.track(frames[4], stamp=float("nan")),
        "stamp string": lambda: busy_tracker.track(frames[4], stamp="4"),
    }
    for name, call in bad_calls.items():
        with pytest.raises(ValueError) as err:
            call()
        print(f"{name}: {err.value}")
        assert fingerprint(busy_tracker) == before, name


def test_construction_errors(backend):
    with pytest.raises(ValueError):
        StreamingTracker(backend).add_prompt(1, points=[[3, 3]], labels=[1])  # no frame yet
    with pytest.raises(ValueError):
        TrackerOptions(history=0)
    with pytest.raises(ValueError):
        TrackerOptions(max_cond_frames=1)
    with pytest.raises(ValueError):
        StreamingTracker(object())
