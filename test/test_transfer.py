"""Host <-> device traffic per frame (issue 23.3), shown on the CPU: results come back in one `to_host` call per
frame with the values of separate copies, constants (mean/std, the prompt encoder's divisor) are made once and
reused, and uploads are no-ops on the CPU. The CUDA side (pinned, non_blocking) is in sam2_ros/model/transfer.py."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import sam2_ros.tracking.tracker as tracker_module
from sam2_ros.model import build_sam2
from sam2_ros.model.sam2 import _normalisation, preprocess
from sam2_ros.model.transfer import to_host, upload
from sam2_ros.sim import SyntheticScene
from sam2_ros.tracking import StreamingTracker

MICRO = Path(__file__).resolve().parents[1] / "models" / "sam2_micro.pt"


def test_packed_copy_equals_separate_copies():
    gen = torch.Generator().manual_seed(0)
    tensors = [torch.randn(3, 48, 64, generator=gen), torch.randn(3, generator=gen),
               torch.randn(3, generator=gen).bfloat16(), torch.randn(3, 16, 16, generator=gen)]
    packed = to_host(tensors, pack=True)
    separate = [t.float().cpu().numpy() for t in tensors]
    assert [a.shape for a in packed] == [b.shape for b in separate]
    assert all(a.dtype == np.float32 and np.array_equal(a, b) for a, b in zip(packed, separate))
    assert all(np.array_equal(a, b) for a, b in zip(to_host(tensors), separate))  # CPU: no packing needed


def test_one_copy_back_per_frame(monkeypatch):
    model = build_sam2("sam2_micro", checkpoint=MICRO, image_size=64)
    calls = []

    def counting(tensors, pack=None):
        calls.append(len(tensors))
        return to_host(tensors, pack=True)  # the GPU path, on the CPU

    monkeypatch.setattr(tracker_module, "to_host", counting)
    scene = SyntheticScene(48, 64, num_objects=2, seed=0)
    tracker = StreamingTracker(model)
    first = tracker.track(scene.frame(0).rgb)
    tracker.add_prompt(1, points=np.array([scene.frame(0).inner_point(0)]), labels=np.array([1]))
    tracker.add_prompt(2, box=np.array(scene.frame(0).box(1), float))
    calls.clear()
    results = [tracker.track(scene.frame(i).rgb) for i in range(1, 4)]
    assert calls == [4, 4, 4] and len(first) == 0  # logits, IoU, presence, low-res logits: one copy
    reference = StreamingTracker(model)
    reference.track(scene.frame(0).rgb)
    reference.add_prompt(1, points=np.array([scene.frame(0).inner_point(0)]), labels=np.array([1]))
    reference.add_prompt(2, box=np.array(scene.frame(0).box(1), float))
    monkeypatch.setattr(tracker_module, "to_host", to_host)
    for got in results:
        want = reference.track(scene.frame(got.stamp).rgb)
        assert np.array_equal(got.mask_logits, want.mask_logits) and np.array_equal(got.iou, want.iou)
        assert np.array_equal(got.presence, want.presence) and np.array_equal(got.masks, want.masks)
        assert np.array_equal(got.low_res_logits, want.low_res_logits)


def test_constants_are_made_once():
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    a = preprocess(rgb, 64)
    mean, std = _normalisation(torch.device("cpu"))
    assert torch.equal(preprocess(rgb, 64), a) and _normalisation(torch.device("cpu"))[0] is mean
    model = build_sam2("sam2_micro", checkpoint=MICRO, image_size=64)
    pe = model.sam_prompt_encoder.pe_layer
    coords = torch.tensor([[[10.0, 20.0]]])
    first = pe.forward_with_coords(coords, (64, 64))
    assert torch.equal(pe.forward_with_coords(coords, (64, 64)), first) and len(pe._extents) == 1
    t = torch.arange(4.0)
    assert upload(t, "cpu") is t
    assert torch.equal(model.pointer_pos([1, 2, 3], 15.0), model.pointer_pos(torch.tensor([1.0, 2.0, 3.0]), 15.0))
