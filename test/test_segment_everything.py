"""Segment everything (sam2_ros.tracking.everything) with the shipped micro model on the demo's synthetic camera.

What the micro model can do (bench/segment_everything.py, docs/BENCHMARKS.md): shapes standing apart are found at
J 0.8-0.97; shapes that overlap or touch are often returned merged with a neighbour or not at all (on 80 frames of
3-4-shape scenes, 53 % of the visible shapes are found at J >= 0.7 and every shape on 9 % of the frames). The exact
"every shape once" check therefore runs on a frame of the demo's own scene (4 shapes, two of them touching) where the
model does find all four; the crowded frames check that nothing is returned twice.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from oracle_backend import CachedEncoder
from sam2_ros.backends.torch_backend import TorchBackend
from sam2_ros.model import build_sam2
from sam2_ros.sim import SyntheticScene, jaccard
from sam2_ros.tracking import StreamingTracker
from sam2_ros.tracking.everything import point_grid, segment_everything

CHECKPOINT = Path(__file__).resolve().parents[1] / "models" / "sam2_micro.pt"
DEMO = SyntheticScene(480, 640, num_objects=4, seed=0)  # the scene `make demo` shows
FOUND_FRAME = 80  # all four shapes found here (two discs touch, the triangle touches a disc)


class CountingBackend(CachedEncoder):
    """Counts image-encoder runs (cached encodings still count: the question is whether one was asked for)."""

    def __init__(self, backend) -> None:
        super().__init__(backend)
        self.encodes = 0

    def encode_image(self, image):
        self.encodes += 1
        return super().encode_image(image)


@pytest.fixture(scope="module")
def backend():
    return CountingBackend(TorchBackend(build_sam2("sam2_micro", checkpoint=CHECKPOINT)))


def match(masks: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """J of every found mask [N, H, W] with every visible shape [K, H, W] -> [N, K]."""
    return np.array([[jaccard(m, t) for t in truth] for m in masks]).reshape(len(masks), len(truth))


def test_finds_every_shape_once(backend):
    frame = DEMO.frame(FOUND_FRAME)
    found = segment_everything(backend, frame.rgb)
    j = match(found.masks, frame.masks)
    print("found", len(found), "masks; J with the shapes:\n", np.round(j, 2), "\niou", found.iou, "stability",
          found.stability, "area", found.area)
    assert len(found) == 4 and found.masks.shape == (4, 480, 640) and found.masks.dtype == bool
    assert (j.max(axis=0) >= 0.7).all(), "every shape found at J >= 0.7"
    assert ((j >= 0.5).sum(axis=0) == 1).all() and ((j >= 0.5).sum(axis=1) == 1).all(), "each shape exactly once"
    scores = found.iou * found.stability
    assert np.all(np.diff(scores) <= 0), "best first"
    assert np.array_equal(found.area, found.masks.sum(axis=(1, 2)))
    assert found.low_res_logits.shape == (4, 64, 64) and found.stamp is None and found.object_ids == []
    grid = point_grid(16, (480, 640))
    assert all(any(np.allclose(p, g) for g in grid) for p in found.points)


@pytest.mark.parametrize("index", [0, 40])
def test_no_duplicates_where_shapes_merge(backend, index):
    """On crowded frames the model misses or merges shapes, but never returns one shape twice."""
    frame = DEMO.frame(index)
    found = segment_everything(backend, frame.rgb)
    j = match(found.masks, frame.masks)
    print(f"frame {index}: best J per shape {np.round(j.max(axis=0), 2) if len(found) else '-'}")
    assert len(found) >= 2
    assert ((j >= 0.5).sum(axis=0) <= 1).all(), "a shape was returned twice"
    for a in range(len(found)):
        for b in range(a + 1, len(found)):
            assert jaccard(found.masks[a], found.masks[b]) < 0.5


def test_history_frame_is_not_encoded_again_and_track_follows_the_shapes(backend):
    tracker = StreamingTracker(backend)
    tracker.track(DEMO.frame(FOUND_FRAME - 1).rgb, stamp=1000)
    tracker.track(DEMO.frame(FOUND_FRAME).rgb, stamp=1001)
    tracker.add_prompt(3, points=[[5.0, 5.0]], labels=[1])  # an existing object: new ids go above it
    encodes = backend.encodes
    direct = segment_everything(backend, DEMO.frame(FOUND_FRAME).rgb)
    assert backend.encodes == encodes + 1
    found = segment_everything(tracker, 1001, track=True)
    assert backend.encodes == encodes + 1, "a history frame must not be encoded again"
    assert found.stamp == 1001 and np.array_equal(found.masks, direct.masks)
    assert found.object_ids == [4, 5, 6, 7] and tracker.object_ids == [3, 4, 5, 6, 7]
    tracker.remove_object(3)
    on_frame = tracker.result(1001)
    for k, object_id in enumerate(found.object_ids):  # its mask prompt, through the 64x64 low-res grid
        row = on_frame.object_ids.index(object_id)
        assert jaccard(on_frame.masks[row], found.masks[k]) > 0.9
    truth = DEMO.frame(FOUND_FRAME).masks
    shape_of = {oid: int(np.argmax(match(found.masks[k:k + 1], truth)[0])) for k, oid in enumerate(found.object_ids)}
    j_tracked = {oid: [] for oid in found.object_ids}
    for t in range(FOUND_FRAME + 1, FOUND_FRAME + 21):
        frame = DEMO.frame(t)
        result = tracker.track(frame.rgb, stamp=1000 + t - FOUND_FRAME + 1)
        assert result.object_ids == found.object_ids
        for row, oid in enumerate(result.object_ids):
            j_tracked[oid].append(jaccard(result.masks[row], frame.masks[shape_of[oid]]))
    for oid, js in j_tracked.items():
        print(f"object {oid}: J over 20 tracked frames mean {np.mean(js):.3f} min {np.min(js):.3f}")
    assert all(np.mean(js) >= 0.6 and np.min(js) >= 0.4 for js in j_tracked.values())


def test_first_id_skips_tracked_ids_and_limits_apply(backend):
    tracker = StreamingTracker(backend)
    tracker.track(DEMO.frame(FOUND_FRAME).rgb, stamp=0)
    tracker.add_prompt(2, points=[[5.0, 5.0]], labels=[1])
    found = segment_everything(tracker, None, track=True, first_id=1, max_objects=2)
    assert found.object_ids == [1, 3] and tracker.object_ids == [2, 1, 3]
    everything = segment_everything(tracker)
    big = int(np.sort(everything.area)[-2])
    only_big = segment_everything(tracker, min_area=big)
    assert len(only_big) >= 2 and (only_big.area >= big).all()


def test_flat_frame_gives_nothing(backend):
    tracker = StreamingTracker(backend)
    for value in (0, 128, 255):
        tracker.track(np.full((120, 160, 3), value, np.uint8))
        found = segment_everything(tracker, None, track=True)
        assert len(found) == 0 and found.masks.shape == (0, 120, 160) and found.object_ids == []
        assert found.points.shape == (0, 2) and found.low_res_logits.shape == (0, 64, 64)
    assert tracker.object_ids == []


def test_bad_arguments_change_nothing(backend):
    tracker = StreamingTracker(backend)
    with pytest.raises(ValueError, match="no frame"):
        segment_everything(tracker)
    tracker.track(DEMO.frame(0).rgb, stamp=0)
    bad = [dict(points_per_side=0), dict(points_per_side=2.5), dict(min_iou=1.5), dict(min_stability=-0.1),
           dict(min_area=-1), dict(max_objects=-2), dict(nms_iou=float("nan")), dict(containment=2.0),
           dict(track="yes"), dict(first_id=0), dict(points_per_batch=0)]
    for kwargs in bad:
        with pytest.raises(ValueError):
            segment_everything(tracker, None, **kwargs)
    with pytest.raises(ValueError, match="image"):
        segment_everything(tracker, DEMO.frame(0).rgb, track=True)
    with pytest.raises(ValueError, match="StreamingTracker"):
        segment_everything(backend, DEMO.frame(0).rgb, track=True)
    with pytest.raises(ValueError, match="image"):
        segment_everything(backend, None)
    with pytest.raises(ValueError):
        segment_everything(backend, np.zeros((10, 10), np.uint8))
    assert tracker.object_ids == []


def test_candidates_and_segment_everything_on_the_onnxruntime_backend():
    """Both only use the decoder's multimask outputs: an exported backend gives the torch backend's candidates and
    masks (tiny config at 256 with perturbed random weights, the export tests' model; logits within 1e-3)."""
    pytest.importorskip("onnxruntime")
    import copy

    from backend_util import CONFIG, scratch_dir, tiny_checkpoint, tiny_export
    from sam2_ros.backends.exported import strip_for_glue
    from sam2_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

    _, export_dir = tiny_export(256)
    model = build_sam2(CONFIG, checkpoint=tiny_checkpoint(256), image_size=256)
    exported = OnnxRuntimeBackend(export_dir, strip_for_glue(copy.deepcopy(model)), "cpu",
                                  cache_dir=scratch_dir("ortcache_everything"), threads=2)
    rgb = DEMO.frame(FOUND_FRAME).rgb
    results = []
    for backend in (TorchBackend(model), exported):
        tracker = StreamingTracker(backend)
        tracker.track(rgb, stamp=0)
        candidates = tracker.add_prompt(1, box=[100.0, 80.0, 300.0, 260.0], multimask=True).candidates
        found = segment_everything(tracker, 0, min_iou=0.0, min_stability=0.0, points_per_side=4)
        results.append((candidates, found))
    (c_torch, f_torch), (c_ort, f_ort) = results
    assert np.abs(c_torch.low_res_logits - c_ort.low_res_logits).max() <= 1e-3
    np.testing.assert_allclose(c_torch.iou, c_ort.iou, atol=1e-4)
    print(f"segment everything, torch {len(f_torch)} masks, onnxruntime {len(f_ort)}")
    assert len(f_torch) == len(f_ort) >= 1
    assert np.abs(f_torch.low_res_logits - f_ort.low_res_logits).max() <= 1e-3
