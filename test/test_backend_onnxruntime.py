"""ONNX Runtime backend against the torch backend: each InferenceBackend method, then StreamingTracker end to end
(points, box, mask prompt, a correction, several objects, enough frames to fill the memory bank).

Tolerances (issue 6): mask logits <= 1e-3 max abs, features <= 1e-4 relative. Tiny config at 256 px.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from backend_util import CONFIG, max_abs, max_rel, scratch_dir, tiny_checkpoint, tiny_export
from sam2_ros.backends.exported import strip_for_glue
from sam2_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from sam2_ros.backends.torch_backend import TorchBackend
from sam2_ros.model import build_sam2
from sam2_ros.tracking import StreamingTracker, TrackerOptions

MASK_TOL, FEAT_TOL = 1e-3, 1e-4
SIZE = 256


@pytest.fixture(scope="module")
def backends():
    root, export_dir = tiny_export(SIZE)
    model = build_sam2(CONFIG, checkpoint=tiny_checkpoint(SIZE), image_size=SIZE)
    ort_backend = OnnxRuntimeBackend(export_dir, strip_for_glue(copy.deepcopy(model)), "cpu",
                                     cache_dir=scratch_dir("ortcache"), threads=2)
    return TorchBackend(model), ort_backend


def _decoder_outputs_close(a, b, label):
    masks = max(max_abs(a.low_res_masks, b.low_res_masks), max_abs(a.high_res_masks, b.high_res_masks),
                max_abs(a.low_res_multimasks, b.low_res_multimasks))
    feats = max(max_rel(a.obj_ptr, b.obj_ptr), max_rel(a.iou, b.iou), max_rel(a.ious, b.ious),
                max_rel(a.object_score_logits, b.object_score_logits))
    print(f"{label}: masks max abs {masks:.1e}, pointer/iou/score max rel {feats:.1e}")
    assert masks <= MASK_TOL and feats <= FEAT_TOL


def test_methods_match_torch(backends):
    torch_be, ort_be = backends
    assert ort_be.config == torch_be.config and ort_be.device == torch.device("cpu")
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(1, 3, SIZE, SIZE, generator=gen)
    with torch.inference_mode():
        ref = torch_be.encode_image(image)
        got = ort_be.encode_image(image)
        print("encode_image max rel", [f"{max_rel(g, r):.1e}" for g, r in zip(got, ref)])
        assert all(max_rel(g, r) <= FEAT_TOL for g, r in zip(got, ref))
        s0, s1, embed, pos = ref
        for b in (1, 3):
            e, f0, f1 = (t.expand(b, -1, -1, -1) for t in (embed, s0, s1))
            coords = torch.rand(b, 2, 2, generator=gen) * SIZE
            labels = torch.tensor([[1, 0]] * b, dtype=torch.int32)
            small_mask = torch.randn(b, 1, 32, 32, generator=gen) * 4  # resized inside decode (antialiased)
            for args, multimask, label in [((None, None, None), False, "no points"),
                                           ((coords, labels, None), True, "points multimask"),
                                           ((coords, labels.long(), small_mask), False, "points + mask")]:
                _decoder_outputs_close(ort_be.decode(e, f0, f1, *args, multimask=multimask),
                                       torch_be.decode(e, f0, f1, *args, multimask=multimask), f"decode B={b} {label}")
            frames, ptrs = 3, 12
            hw = (SIZE // 16) ** 2
            memory = torch.randn(b, frames * hw, 64, generator=gen)
            mem_pos = torch.randn(b, frames * hw, 64, generator=gen)
            obj = torch.randn(b, ptrs, 64, generator=gen)
            obj_pos = torch.randn(b, ptrs, 64, generator=gen)
            p = pos.expand(b, -1, -1, -1)
            err = max_rel(ort_be.attend_memory(e, p, memory, mem_pos, obj, obj_pos),
                          torch_be.attend_memory(e, p, memory, mem_pos, obj, obj_pos))
            print(f"attend_memory B={b} max rel {err:.1e}")
            assert err <= FEAT_TOL
            high = torch.randn(b, 1, SIZE, SIZE, generator=gen) * 8
            score = torch.linspace(-2, 2, b).reshape(b, 1)
            for binarize in (False, True):
                got_m = ort_be.encode_memory(e, high, score, binarize)
                ref_m = torch_be.encode_memory(e, high, score, binarize)
                err = max(max_rel(g, r) for g, r in zip(got_m, ref_m))
                print(f"encode_memory B={b} binarize={binarize} max rel {err:.1e}")
                assert err <= FEAT_TOL
        with pytest.raises(ValueError):
            ort_be.encode_image(torch.zeros(1, 3, 128, 128))
        with pytest.raises(ValueError):
            ort_be.decode(embed, s0, s1, torch.zeros(1, 2, 2), torch.zeros(1, 3, dtype=torch.int32))


def _run_stream(backend, frames, batch_objects):
    tracker = StreamingTracker(backend, TrackerOptions(batch_objects=batch_objects))
    results = [tracker.track(frames[0], stamp=0)]
    results.append(tracker.add_prompt(1, points=np.array([[90, 70]]), labels=np.array([1]), stamp=0))
    results.append(tracker.add_prompt(2, box=np.array([150, 40, 260, 150]), stamp=0))
    mask = np.zeros(frames[0].shape[:2], bool)
    mask[120:180, 30:120] = True
    for k, frame in enumerate(frames[1:], 1):
        results.append(tracker.track(frame, stamp=k))
        if k == 2:
            results.append(tracker.add_prompt(3, mask=mask))  # mask prompt (glue path)
        if k == 4:  # correction on a tracked frame: decoder fed the previous logits (mask-input graph)
            results.append(tracker.add_prompt(1, points=np.array([[100, 80], [20, 20]]), labels=np.array([1, 0])))
    return results


def test_tracker_end_to_end_matches_torch(backends):
    torch_be, ort_be = backends
    batch_objects = True  # per-object batches of 1 are covered by the B=1 method checks above
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (200, 300, 3)).astype(np.int16)
    frames = [np.clip(base + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8) for _ in range(7)]
    ref = _run_stream(torch_be, frames, batch_objects)
    got = _run_stream(ort_be, frames, batch_objects)
    worst = worst_iou = 0.0
    for r, g in zip(ref, got):
        assert r.object_ids == g.object_ids and r.stamp == g.stamp
        worst = max(worst, max_abs(torch.from_numpy(g.mask_logits), torch.from_numpy(r.mask_logits)))
        worst_iou = max(worst_iou, max_abs(torch.from_numpy(g.iou), torch.from_numpy(r.iou)),
                        max_abs(torch.from_numpy(g.presence), torch.from_numpy(r.presence)))
    present = float(np.mean([r.masks.mean() for r in ref if len(r)]))
    print(f"tracker ({len(ref)} results, batch_objects={batch_objects}): mask logits max abs {worst:.1e}, "
          f"iou/presence max abs {worst_iou:.1e}, mean mask fraction {present:.2f}")
    assert len(ref[-1]) == 3 and 0.01 < present < 0.99  # real masks, not constants
    assert worst <= MASK_TOL and worst_iou <= 1e-4
