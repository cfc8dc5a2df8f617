"""EdgeTAM on every CPU backend: ONNX export of the parts (the perceiver inside `encode_memory`), ONNX Runtime
against torch per part and through StreamingTracker, `backend: auto`, and the node's `model_config: edgetam`.

Random weights (our own model, seeded) saved in Meta's layout; image_size 256. Tolerances as the SAM 2 backend
tests: mask logits <= 1e-3 max abs, features <= 1e-4 relative.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from backend_util import max_abs, max_rel, scratch_dir
from sam2_ros.backends.exported import strip_for_glue
from sam2_ros.backends.factory import create_backend, ensure_export
from sam2_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from sam2_ros.backends.torch_backend import TorchBackend
from sam2_ros.model import build_sam2, weights_hash
from sam2_ros.ros.params import validate
from sam2_ros.tracking import StreamingTracker

pytestmark = pytest.mark.slow  # exports EdgeTAM to ONNX twice (~35 s here)
SIZE, MASK_TOL, FEAT_TOL = 256, 1e-3, 1e-4


@pytest.fixture(scope="module")
def checkpoint():
    """Seeded random EdgeTAM weights, presence biased and mask heads scaled (masks worth comparing), as edgetam.pt."""
    torch.manual_seed(0)
    model = build_sam2("edgetam", image_size=SIZE)
    decoder = model.sam_mask_decoder
    with torch.no_grad():
        decoder.pred_obj_score_head.layers[2].bias += 4.0
        for mlp in decoder.output_hypernetworks_mlps:
            mlp.layers[2].weight *= 20.0
        for name, buf in model.named_buffers():  # BatchNorm statistics other than 0 / 1
            if name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
    path = scratch_dir("edgetam") / "edgetam.pt"
    torch.save({"model": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def backends(checkpoint):
    model = build_sam2("edgetam", checkpoint=checkpoint, image_size=SIZE)
    export_dir = ensure_export(model, weights_hash(checkpoint), scratch_dir("edgetam_cache"))
    ort = OnnxRuntimeBackend(export_dir, strip_for_glue(copy.deepcopy(model)), "cpu",
                             cache_dir=scratch_dir("edgetam_ort"), threads=2)
    return TorchBackend(model), ort


def test_parts_match_torch(backends):
    torch_be, ort_be = backends
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        image = torch.randn(1, 3, SIZE, SIZE, generator=gen)
        ref, got = torch_be.encode_image(image), ort_be.encode_image(image)
        assert all(max_rel(g, r) <= FEAT_TOL for g, r in zip(got, ref))
        s0, s1, embed, pos = ref
        for b, frames in ((1, 1), (3, 4)):  # other than the traced sizes (2 objects, 2 frames)
            e, f0, f1, p = (t.expand(b, -1, -1, -1) for t in (embed, s0, s1, pos))
            coords = torch.rand(b, 2, 2, generator=gen) * SIZE
            labels = torch.tensor([[1, 0]] * b, dtype=torch.int32)
            for multimask in (False, True):
                a = ort_be.decode(e, f0, f1, coords, labels, multimask=multimask)
                r = torch_be.decode(e, f0, f1, coords, labels, multimask=multimask)
                assert max_abs(a.low_res_multimasks, r.low_res_multimasks) <= MASK_TOL
                assert max_rel(a.obj_ptr, r.obj_ptr) <= FEAT_TOL
            tokens = frames * 512  # perceiver tokens per memory frame
            memory, mem_pos = torch.randn(b, tokens, 64, generator=gen), torch.randn(b, tokens, 64, generator=gen)
            ptrs, ptr_pos = torch.randn(b, 12, 64, generator=gen), torch.randn(b, 12, 64, generator=gen)
            err = max_rel(ort_be.attend_memory(e, p, memory, mem_pos, ptrs, ptr_pos),
                          torch_be.attend_memory(e, p, memory, mem_pos, ptrs, ptr_pos))
            print(f"attend_memory B={b} frames={frames}: max rel {err:.1e}")
            assert err <= FEAT_TOL
            high = torch.randn(b, 1, SIZE, SIZE, generator=gen) * 8
            score = torch.linspace(-2, 2, b).reshape(b, 1)
            for binarize in (False, True):
                got_m = ort_be.encode_memory(e, high, score, binarize)
                ref_m = torch_be.encode_memory(e, high, score, binarize)
                assert got_m[0].shape == (b, 64, 512)
                err = max(max_rel(g, r) for g, r in zip(got_m, ref_m))
                print(f"encode_memory (perceiver) B={b} binarize={binarize}: max rel {err:.1e}")
                assert err <= FEAT_TOL


def _stream(backend, frames):
    tracker = StreamingTracker(backend)
    out = [tracker.track(frames[0], stamp=0),
           tracker.add_prompt(1, points=np.array([[90, 70]]), labels=np.array([1]), stamp=0),
           tracker.add_prompt(2, box=np.array([150, 40, 230, 150]), stamp=0)]
    for k, frame in enumerate(frames[1:], 1):
        out.append(tracker.track(frame, stamp=k))
        if k == 3:  # an object added mid-stream
            out.append(tracker.add_prompt(3, points=np.array([[60, 180], [10, 10]]), labels=np.array([1, 0])))
    return out, tracker


def test_tracker_onnxruntime_matches_torch(backends):
    torch_be, ort_be = backends
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (200, 260, 3)).astype(np.int16)
    frames = [np.clip(base + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8) for _ in range(9)]
    ref, tracker = _stream(torch_be, frames)
    got, _ = _stream(ort_be, frames)
    worst = max(max_abs(torch.from_numpy(g.mask_logits), torch.from_numpy(r.mask_logits)) for r, g in zip(ref, got))
    present = float(np.mean([r.masks.mean() for r in ref if len(r)]))
    print(f"EdgeTAM tracker, onnxruntime vs torch: {len(ref)} results, mask logits max abs {worst:.1e}, "
          f"mean mask fraction {present:.2f}")
    assert [r.object_ids for r in ref] == [g.object_ids for g in got] and len(ref[-1]) == 3
    assert 0.01 < present < 0.99 and worst <= MASK_TOL
    bank = [m.maskmem for obj in tracker._objects.values() for m in [*obj.recent.values(), *obj.cond.values()]
            if m.maskmem is not None]
    assert {tuple(m.shape) for m in bank} == {(64, 512)}  # perceiver tokens, bfloat16: 64 KiB per memory frame
    assert {m.dtype for m in bank} == {torch.bfloat16}


def test_backend_auto_and_node_parameter(checkpoint, tmp_path):
    assert validate("model_config", "edgetam") is None
    backend = create_backend("auto", "edgetam", checkpoint=str(checkpoint), image_size=SIZE, device="cpu",
                             cache_dir=tmp_path)
    assert backend.name == ("onnxruntime" if not torch.cuda.is_available() else backend.name)
    tracker = StreamingTracker(backend)
    tracker.track(np.zeros((120, 160, 3), np.uint8), stamp=0)
    r = tracker.add_prompt(1, points=np.array([[80, 60]]), labels=np.array([1]))
    assert r.object_ids == [1] and r.mask_logits.shape == (1, 120, 160)


def test_image_size_must_tile_the_perceiver_grid():
    with pytest.raises(ValueError, match="multiple of 256"):
        build_sam2("edgetam", image_size=384)
