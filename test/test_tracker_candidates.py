"""Candidate masks of ambiguous prompts: add_prompt(..., multimask=True) -> TrackResult.candidates, and
select_candidate(). Runs the shipped micro model (models/sam2_micro.pt) through the real StreamingTracker on the
synthetic camera, so the three candidates are the trained decoder's, not noise."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from oracle_backend import CachedEncoder
from sam2_ros.backends.torch_backend import TorchBackend
from sam2_ros.model import build_sam2
from sam2_ros.sim import SyntheticScene, jaccard
from sam2_ros.tracking import StreamingTracker, TrackerOptions

CHECKPOINT = Path(__file__).resolve().parents[1] / "models" / "sam2_micro.pt"
H, W = 240, 320
SCENE = SyntheticScene(H, W, num_objects=3, seed=2)
FRAMES = [SCENE.frame(t).rgb for t in range(10)]


@pytest.fixture(scope="module")
def backend():
    return CachedEncoder(TorchBackend(build_sam2("sam2_micro", checkpoint=CHECKPOINT)))


def click(k: int = 0, t: int = 0) -> dict:
    x, y = SCENE.frame(t).inner_point(k)
    return dict(points=[[x, y]], labels=[1])


def run(backend, prompts: dict, frames: int = 8, options: TrackerOptions | None = None) -> list:
    """Track `frames` frames; prompts[t] = list of (method, kwargs) called after frame t; logits of every frame's
    final result (read at the end, so late prompts are included)."""
    tracker = StreamingTracker(backend, options)
    for t in range(frames):
        tracker.track(FRAMES[t], stamp=t)
        for method, kwargs in prompts.get(t, []):
            getattr(tracker, method)(**kwargs)
    return [tracker.result(t).mask_logits for t in tracker.stamps]


def test_single_click_gives_three_distinct_ranked_candidates(backend):
    tracker = StreamingTracker(backend)
    tracker.track(FRAMES[0], stamp=0)
    result = tracker.add_prompt(1, **click(), multimask=True)
    cands = result.candidates
    assert cands is not None and cands.object_id == 1 and cands.stamp == 0 and len(cands) == 3
    s = backend.config.image_size // 4
    assert cands.masks.shape == cands.mask_logits.shape == (3, H, W) and cands.masks.dtype == bool
    assert cands.low_res_logits.shape == (3, s, s)
    assert np.array_equal(cands.masks, cands.mask_logits > 0)
    print("candidate IoU", cands.iou, "stability", cands.stability, "areas", cands.masks.sum((1, 2)))
    assert np.all(np.diff(cands.iou) <= 0), "candidates must be ordered by predicted IoU, best first"
    for i in range(3):
        for j in range(i + 1, 3):
            assert jaccard(cands.masks[i], cands.masks[j]) < 0.95, f"candidates {i} and {j} are not distinct"
    # Stability = IoU of the mask at logit > +1 and > -1, on the decoder grid.
    low = cands.low_res_logits
    expected = (low > 1).sum((1, 2)) / np.maximum((low > -1).sum((1, 2)), 1)
    np.testing.assert_allclose(cands.stability, expected, rtol=1e-6)
    # One click on a new object: SAM 2 itself decodes three masks and tracks the best one -- candidate 0.
    np.testing.assert_array_equal(result.mask_logits[0], cands.mask_logits[0])
    assert result.iou[0] == pytest.approx(cands.iou[0])


def test_multimask_leaves_the_tracked_result_unchanged(backend):
    """Same prompts with and without multimask give bit-identical tracking: a click (candidates of the tracked
    decode), a box and two clicks (an extra decode just for the candidates), a late correction."""
    x1, y1 = SCENE.frame(3).inner_point(1)
    x2, y2 = SCENE.frame(3).inner_point(2)
    box = [float(v) for v in SCENE.frame(0).box(2)]

    def prompts(multimask: bool) -> dict:
        return {0: [("add_prompt", dict(object_id=1, **click(0), multimask=multimask)),
                    ("add_prompt", dict(object_id=2, box=box, multimask=multimask))],
                3: [("add_prompt", dict(object_id=3, points=[[x1, y1], [x2, y2]], labels=[1, 0],
                                        multimask=multimask))],
                5: [("add_prompt", dict(object_id=1, stamp=2, multimask=multimask, **click(0, 2)))]}

    with_candidates, without = run(backend, prompts(True)), run(backend, prompts(False))
    for t, (a, b) in enumerate(zip(with_candidates, without)):
        assert a.shape == b.shape and np.array_equal(a, b), f"frame {t} changed by multimask"


def test_candidates_of_a_box_and_of_a_late_prompt(backend):
    tracker = StreamingTracker(backend)
    for t in range(4):
        tracker.track(FRAMES[t], stamp=10 * t)
    assert tracker.add_prompt(1, **click(0, 3)).candidates is None  # not asked
    box = [float(v) for v in SCENE.frame(1).box(1)]
    late = tracker.add_prompt(2, box=box, stamp=10, multimask=True)
    assert late.stamp == 10 and late.candidates.stamp == 10 and len(late.candidates) == 3
    assert np.all(np.diff(late.candidates.iou) <= 0)
    with pytest.raises(ValueError, match="multimask"):
        tracker.add_prompt(1, mask=SCENE.frame(3).masks[0], multimask=True)
    with pytest.raises(ValueError, match="multimask"):
        tracker.add_prompt(1, **click(0, 3), multimask="yes")


def test_select_candidate_equals_a_mask_prompt_of_that_candidate(backend):
    """Selecting candidate 1 on frame 2 after frame 5 = adding candidates.masks[1] as a mask prompt on frame 2
    (re-tracked forward); it changes the tracked mask on the following frames. The click is near an object's edge,
    where the candidates differ most (J(candidate 0, candidate 1) ~0.6)."""
    tracker = StreamingTracker(backend)
    for t in range(6):
        tracker.track(FRAMES[t], stamp=t)
    edge_click = dict(points=[[300.0, 75.0]], labels=[1])
    assert SCENE.frame(2).masks.any(0)[75, 300]
    cands = tracker.add_prompt(1, **edge_click, stamp=2, multimask=True).candidates
    assert jaccard(cands.masks[0], cands.masks[1]) < 0.8
    plain = [tracker.result(t).mask_logits.copy() for t in range(2, 6)]
    selected = tracker.select_candidate(1, 1)
    assert selected.stamp == 2 and selected.object_ids == [1]
    reference = StreamingTracker(backend)
    for t in range(6):
        reference.track(FRAMES[t], stamp=t)
    reference.add_prompt(1, **edge_click, stamp=2, multimask=True)
    reference.add_prompt(1, mask=cands.masks[1], stamp=2)
    for t in range(6, 10):
        tracker.track(FRAMES[t], stamp=t)
        reference.track(FRAMES[t], stamp=t)
    for t in range(2, 10):
        a, b = tracker.result(t).mask_logits, reference.result(t).mask_logits
        np.testing.assert_allclose(a, b, atol=1e-5, err_msg=f"frame {t}")
    assert jaccard(tracker.result(2).masks[0], cands.masks[1]) > 0.95
    changed = [1 - jaccard(tracker.result(t).masks[0], plain[t - 2][0] > 0) for t in range(3, 6)]
    print("1 - J(selected, unselected) on frames 3..5:", np.round(changed, 3))
    assert min(changed) > 0.1, "selecting another candidate must change the tracked mask on later frames"
    # The candidates stay: another one can still be chosen, the same way.
    again = tracker.select_candidate(1, 0, stamp=2)
    assert jaccard(again.masks[0], cands.masks[0]) > 0.95


def test_bad_selection_changes_nothing(backend):
    tracker = StreamingTracker(backend)
    for t in range(3):
        tracker.track(FRAMES[t], stamp=t)
    tracker.add_prompt(1, **click(0, 2), multimask=True)
    tracker.add_prompt(2, **click(1, 2))  # no candidates
    before = tracker.result().mask_logits.copy()
    bytes_before = tracker.memory_bytes()
    bad = [dict(object_id=1, index=3), dict(object_id=1, index=-1), dict(object_id=1, index=True),
           dict(object_id=1, index=1.0), dict(object_id=1, index="1"), dict(object_id=7, index=0),
           dict(object_id=0, index=0), dict(object_id=2, index=0), dict(object_id=1, index=0, stamp=1),
           dict(object_id=1, index=0, stamp=float("nan"))]
    for kwargs in bad:
        with pytest.raises(ValueError) as err:
            tracker.select_candidate(**kwargs)
        print(kwargs, "->", err.value)
        assert np.array_equal(tracker.result().mask_logits, before)
        assert tracker.memory_bytes() == bytes_before
    # Nothing changed for later frames either: the same stream without the bad calls tracks identically.
    reference = StreamingTracker(backend)
    for t in range(3):
        reference.track(FRAMES[t], stamp=t)
    reference.add_prompt(1, **click(0, 2), multimask=True)
    reference.add_prompt(2, **click(1, 2))
    for t in range(3, 5):
        assert np.array_equal(tracker.track(FRAMES[t], stamp=t).mask_logits,
                              reference.track(FRAMES[t], stamp=t).mask_logits)


def test_candidates_are_bounded(backend):
    """Only the last multimask prompt per object is kept; dropped with the object or when its frame leaves the
    history (measured as the memory a tracker with candidates holds beyond one given the same prompts without)."""
    with_c, without = (StreamingTracker(backend, TrackerOptions(history=3)) for _ in range(2))
    s = backend.config.image_size // 4
    record = 3 * s * s * 4 + 2 * 3 * 4  # [3, 1, s, s] logits + IoU + stability, float32

    def both(method: str, *args, **kwargs) -> int:
        getattr(with_c, method)(*args, **kwargs)
        if "multimask" in kwargs:
            kwargs["multimask"] = False
        getattr(without, method)(*args, **kwargs)
        return with_c.memory_bytes() - without.memory_bytes()

    both("track", FRAMES[0], stamp=0)
    both("add_prompt", 1, **click(0), multimask=True)
    assert both("add_prompt", 2, **click(1), multimask=True) == 2 * record
    assert both("add_prompt", 1, **click(0), multimask=True) == 2 * record  # replaces object 1's candidates
    assert both("remove_object", 2) == record
    with pytest.raises(ValueError, match="unknown object"):
        with_c.select_candidate(2, 0)
    for t in range(1, 3):
        both("track", FRAMES[t], stamp=t)
    with_c.select_candidate(1, 2)  # frame 0 is still in the 3-frame history
    without.add_prompt(1, mask=with_c.result(0).masks[0], stamp=0)
    assert both("track", FRAMES[3], stamp=3) == 0  # frame 0 left the history
    with pytest.raises(ValueError, match="no candidates"):
        with_c.select_candidate(1, 0)
    both("add_prompt", 1, **click(0, 3), multimask=True)
    assert both("reset") == 0
