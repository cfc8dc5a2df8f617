"""The node's side of issue 18 without processes (sam2_ros/ros/decoder_outputs.py): low-resolution masks of a frame's
published objects, candidate and segment-everything messages, ~/segment_everything's argument rules. Real messages,
logits of synthetic shapes on the decoder's grid (as test_mask_resolution.py models them)."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sam2_ros.model.sam2 import postprocess_masks
from sam2_ros.ros import conversions as conv
from sam2_ros.ros import decoder_outputs as dec
from sam2_ros.ros.params import Settings
from sam2_ros.session.requests import PromptError
from sam2_ros.sim import SyntheticScene, jaccard
from sam2_ros.tracking import everything
from sam2_ros.tracking.state import Candidates, TrackResult
from test_mask_resolution import downsample

H, W, S = 480, 640, 64


def grid_logits(count: int, seed: int = 3) -> np.ndarray:
    """[N, s, s] soft-edged logits of `count` synthetic shapes squeezed to the decoder's square grid."""
    shapes = SyntheticScene(H, W, num_objects=count, seed=seed).frame(0).masks
    cover = F.interpolate(torch.from_numpy(shapes.astype(np.float32))[:, None], size=(S, S), mode="area")[:, 0]
    return ((cover - 0.5) * 20.0).numpy()


def result_of(ids: list[int], grid: np.ndarray, iou: list[float]) -> TrackResult:
    """A TrackResult as the tracker builds it: full-size logits upsampled from the grid."""
    logits = postprocess_masks(torch.from_numpy(grid)[:, None], (H, W))[:, 0].numpy()
    return TrackResult(0, ids, logits > 0, logits, np.array(iou, np.float32), np.full(len(ids), 0.75, np.float32),
                       grid)


def test_low_res_outputs_follow_the_published_objects():
    result = result_of([5, 2, 9], grid_logits(3), [0.9, 0.3, 0.8])
    for threshold in (0.0, 4.0):
        out = conv.frame_outputs(result, threshold, min_iou=0.5)
        low = dec.low_res_outputs(result, out, threshold, 0.5)
        assert low.masks.shape == (3, 48, 64) and low.scale == pytest.approx(0.1)
        assert out.object_ids == [2, 5, 9], "published in ascending id order"
        assert not low.masks[0].any(), "gated by min_iou like the full mask (object 2, IoU 0.3)"
        for k in (1, 2):
            agreement = jaccard(low.masks[k], downsample(out.masks[k:k + 1], (48, 64))[0])
            print(f"threshold {threshold}, object {out.object_ids[k]}: J(low, full downsampled) {agreement:.4f}")
            assert agreement >= 0.95
        if threshold:  # a higher threshold gives smaller masks, at both resolutions
            base = dec.low_res_outputs(result, conv.frame_outputs(result, 0.0, 0.5), 0.0, 0.5)
            assert low.masks.sum() < base.masks.sum()
    # Objects published in another order than the tracker's (ascending ids): rows follow the published order.
    out = conv.frame_outputs(result, 0.0, 0.0)
    order = [[5, 2, 9].index(object_id) for object_id in out.object_ids]  # tracker row of each published object
    alone = [dec.low_res_outputs(result_of([i], grid_logits(3)[[k]], [0.9]),
                                 conv.frame_outputs(result_of([i], grid_logits(3)[[k]], [0.9])), 0.0, 0.0).masks[0]
             for i, k in zip(out.object_ids, order)]
    np.testing.assert_array_equal(dec.low_res_outputs(result, out, 0.0, 0.0).masks, np.stack(alone))
    shuffled = dataclasses.replace(out, object_ids=out.object_ids[::-1], masks=out.masks[::-1], iou=out.iou[::-1],
                                   presence=out.presence[::-1])
    np.testing.assert_array_equal(dec.low_res_outputs(result, shuffled, 0.0, 0.0).masks,
                                  dec.low_res_outputs(result, out, 0.0, 0.0).masks[::-1])
    empty = result_of([], np.zeros((0, S, S), np.float32), [])
    assert dec.low_res_outputs(empty, conv.frame_outputs(empty), 0.0, 0.0).masks.shape == (0, 48, 64)


def test_low_mask_array_keeps_box_and_area_in_source_pixels():
    from std_msgs.msg import Header

    result = result_of([1, 2], grid_logits(2), [0.9, 0.8])
    out = conv.frame_outputs(result)
    low = dec.low_res_outputs(result, out, 0.0, 0.0)
    full, small = conv.to_mask_array(out, Header(frame_id="cam")), conv.to_mask_array(out, Header(frame_id="cam"), low)
    for a, b, k in zip(full.objects, small.objects, range(2)):
        assert (a.bbox, a.area, a.iou, a.presence) == (b.bbox, b.area, b.iou, b.presence)
        assert (a.mask.width, a.mask.height, a.mask_scale) == (W, H, 1.0)
        assert (b.mask.width, b.mask.height, b.mask.step) == (64, 48, 64) and b.mask_scale == pytest.approx(0.1)
        assert b.mask.header.frame_id == "cam" and bytes(b.mask.data) == (low.masks[k] * 255).astype(np.uint8).tobytes()


@pytest.mark.parametrize("low", [False, True])
def test_candidate_and_everything_messages(low):
    from std_msgs.msg import Header

    grid = grid_logits(3, seed=5)
    full = postprocess_masks(torch.from_numpy(grid)[:, None], (H, W))[:, 0].numpy()
    cands = Candidates(4, 0, full > 0, full, np.array([0.9, 0.7, 0.2], np.float32),
                       np.array([0.5, 0.25, 1.0], np.float32), grid)
    result = result_of([2, 4], grid[:2], [0.5, 0.9])
    header = Header(frame_id="cam")
    array, stability = dec.candidate_masks(cands, result, header, low)
    assert stability == [0.5, 0.25, 1.0] and array.header.frame_id == "cam"
    assert [o.object_id for o in array.objects] == [4, 4, 4]
    assert [o.iou for o in array.objects] == pytest.approx([0.9, 0.7, 0.2])
    assert all(o.presence == pytest.approx(0.75) for o in array.objects), "the prompted object's presence"
    size = (48, 64) if low else (H, W)
    for k, o in enumerate(array.objects):
        assert (o.mask.height, o.mask.width) == size and o.area == (full[k] > 0).sum()
        assert o.mask_scale == pytest.approx(0.1 if low else 1.0)

    found = everything.EverythingResult(None, full > 0, grid, np.array([0.9, 0.8, 0.7], np.float32),
                                        np.ones(3, np.float32), (full > 0).sum((1, 2)), np.zeros((3, 2), np.float32))
    frame = SimpleNamespace(stamp_ns=123, header=header)
    args = dict(points_per_side=16, min_iou=0.6, min_stability=0.6, min_area=0, max_objects=0)
    text, array = dec.everything_answer(found, args, frame, low)
    assert [o.object_id for o in array.objects] == [1, 2, 3] and "3 mask(s) on frame 123 (16x16 points" in text
    assert all(o.presence == 1.0 and (o.mask.height, o.mask.width) == size for o in array.objects)
    found.object_ids = [7, 8, 9]
    text, array = dec.everything_answer(found, args, frame, low)
    assert [o.object_id for o in array.objects] == [7, 8, 9] and text.endswith("tracked as object(s) 7, 8, 9")


def request(**fields):
    base = dict(points_per_side=0, min_iou=0.0, min_stability=0.0, min_area=0, max_objects=0, track=False)
    return SimpleNamespace(**{**base, **fields})


def test_everything_arguments():
    s = Settings(max_objects=5, everything_points_per_side=8, everything_min_iou=0.7, everything_min_stability=0.5)
    assert dec.everything_args(request(), s, set()) == dict(points_per_side=8, min_iou=0.7, min_stability=0.5,
                                                            min_area=0, max_objects=0, track=False, first_id=None)
    given = dec.everything_args(request(points_per_side=4, min_iou=0.2, min_stability=0.3, min_area=9, max_objects=2),
                                s, {1})
    assert given == dict(points_per_side=4, min_iou=pytest.approx(0.2), min_stability=pytest.approx(0.3), min_area=9,
                         max_objects=2, track=False, first_id=None)
    # track: at most the free object slots
    assert dec.everything_args(request(track=True), s, {1, 2})["max_objects"] == 3
    assert dec.everything_args(request(track=True, max_objects=2), s, {1, 2})["max_objects"] == 2
    assert dec.everything_args(request(track=True, max_objects=9), s, {1, 2})["max_objects"] == 3
    assert dec.everything_args(request(track=True, max_objects=-1), s, {1})["max_objects"] == -1  # refused later
    with pytest.raises(PromptError, match="max_objects=5"):
        dec.everything_args(request(track=True), s, {1, 2, 3, 4, 5})
    assert dec.everything_args(request(track=True), s, {65534})["first_id"] == 1, "ids stay within label images"
    with pytest.raises(PromptError, match="at most 64"):
        dec.everything_args(request(points_per_side=65), s, set())
    # The node's defaults are the core's (tuned on the micro model, docs/BENCHMARKS.md).
    d = Settings()
    assert (d.everything_points_per_side, d.everything_min_iou, d.everything_min_stability) == \
        (everything.POINTS_PER_SIDE, everything.MIN_IOU, everything.MIN_STABILITY)
