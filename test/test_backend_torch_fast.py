"""The torch backend's fast path: autocast precision and torch.compile, part by part against fp32 on equal inputs.

bf16 autocast runs on the CPU here; the fp16 + compile (CUDA graphs) cases are in test_backend_torch_compile.py.
(Whole-stream comparisons are not used: with random weights a half-precision rounding can flip a multimask choice
and the streams diverge, which says nothing about the backend.)
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend_util import CONFIG, tiny_checkpoint
from sam2_ros.backends.torch_backend import TorchBackend
from sam2_ros.model import build_sam2
from sam2_ros.tracking import StreamingTracker

SIZE = 256


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| relative to max |a|."""
    return ((a.float() - b.float()).abs().max() / a.float().abs().max().clamp(min=1e-6)).item()


def _part_errors(ref: TorchBackend, fast: TorchBackend, device: str) -> dict[str, float]:
    """Relative error of each part of `fast` vs `ref` on the same inputs (the fp32 encoder's features downstream)."""
    g = torch.Generator().manual_seed(0)
    image = torch.randn(1, 3, SIZE, SIZE, generator=g).to(device)
    with torch.inference_mode():
        feats, fast_feats = ref.encode_image(image), fast.encode_image(image)
        assert all(f.dtype == torch.float32 for f in fast_feats)
        s0, s1, embed, pos = feats
        coords = torch.tensor([[[100.0, 120.0], [30.0, 40.0]]], device=device)
        labels = torch.tensor([[1, 0]], dtype=torch.int32, device=device)
        dec_ref, dec_fast = (b.decode(embed, s0, s1, coords, labels, None, True) for b in (ref, fast))
        assert dec_fast.low_res_multimasks.dtype == torch.float32
        h = SIZE // 16
        memory = torch.randn(1, 3 * h * h, ref.config.mem_dim, generator=g).to(device)
        memory_pos, ptrs, ptr_pos = (torch.randn(1, n, ref.config.mem_dim, generator=g).to(device)
                                     for n in (3 * h * h, 8, 8))
        att = [b.attend_memory(embed, pos, memory, memory_pos, ptrs, ptr_pos) for b in (ref, fast)]
        masks = (torch.randn(1, 1, SIZE, SIZE, generator=g) * 5).to(device)
        score = torch.tensor([[2.0]], device=device)
        mem = [b.encode_memory(embed, masks, score, False)[0] for b in (ref, fast)]
    errors = {"encode_image": max(_rel(a, b) for a, b in zip(feats, fast_feats)),
              "decode": _rel(dec_ref.low_res_multimasks, dec_fast.low_res_multimasks),
              "decode_iou": _rel(dec_ref.ious, dec_fast.ious),
              "attend_memory": _rel(*att), "encode_memory": _rel(*mem)}
    print({k: f"{v:.2e}" for k, v in errors.items()})
    return errors


def test_bf16_autocast_on_cpu_matches_fp32_part_by_part():
    model = build_sam2(CONFIG, checkpoint=tiny_checkpoint(SIZE), image_size=SIZE)
    errors = _part_errors(TorchBackend(model), TorchBackend(model, precision="bf16"), "cpu")
    # bf16 keeps 8 mantissa bits (rounding 2^-9 ~ 2e-3 per op); a few percent after a deep network is expected,
    # while a wrong cast or a dropped part would be off by O(1).
    assert max(errors.values()) <= 3e-2


def test_bf16_backend_tracks_a_stream():
    model = build_sam2(CONFIG, checkpoint=tiny_checkpoint(SIZE), image_size=SIZE)
    tracker = StreamingTracker(TorchBackend(model, precision="bf16"))
    rng = np.random.default_rng(0)
    tracker.track(rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8), stamp=0)
    tracker.add_prompt(1, points=[[110, 120]], labels=[1])
    result = tracker.track(rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8), stamp=1)
    assert result.object_ids == [1] and result.mask_logits.dtype == np.float32
    assert np.isfinite(result.mask_logits).all() and 0 <= result.iou[0] <= 1


def test_bad_precision_is_refused():
    model = build_sam2("sam2_micro", image_size=64)
    with pytest.raises(ValueError, match="precision"):
        TorchBackend(model, precision="int8")
