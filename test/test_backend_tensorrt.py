"""TensorRT backend: optimisation profiles (checked anywhere, against the exported graphs' real shapes in ONNX Runtime),
the version rule and the engine cache key (anywhere), and — only where a CUDA GPU and TensorRT 10 exist (marker
`cuda`) — engines built and run against the torch backend (IEEE fp32 on both sides: TF32 off), on their own
stream, for SAM 2.1 and SAM 2.0 configs. On the CPU also: the precision plan per TensorRT version and the address
alignment rules.
"""
from __future__ import annotations

import copy

import numpy as np
import onnxruntime as ort
import pytest
import torch

import sam2_ros.backends.tensorrt_backend as trt_backend
from backend_util import CONFIG, max_abs, max_rel, scratch_dir, tiny_checkpoint, tiny_export
from fixtures.checkpoint import write_checkpoint
from sam2_ros.backends.cache import ArtifactCache
from sam2_ros.backends.exported import strip_for_glue
from sam2_ros.backends.factory import create_backend
from sam2_ros.backends.tensorrt_backend import (ShapeLimits, TensorRTBackend, engine_key_parts, memory_limits,
                                                profile_shapes, tensorrt_unavailable, tensorrt_version_problem)
from sam2_ros.backends.torch_backend import TorchBackend
from sam2_ros.export.parts import PART_SPECS
from sam2_ros.model import build_sam2, get_config
from sam2_ros.tracking import StreamingTracker

NO_TRT = tensorrt_unavailable("cuda")
needs_trt = pytest.mark.skipif(NO_TRT is not None, reason=f"TensorRT test skipped: {NO_TRT}")


def test_profiles_cover_the_tracker_memory():
    cfg = get_config(CONFIG)  # 1024: h = 64, C = 256, D = 64
    limits = ShapeLimits(max_objects=8, max_points=16, max_cond_frames=8)
    max_frames, opt_frames, max_ptrs, opt_ptrs = memory_limits(cfg, limits)
    assert (max_frames, opt_frames) == (8 + 7 - 1, 7)  # prompted frames + the 6 previous frames
    assert (max_ptrs, opt_ptrs) == ((8 + 16 - 1) * 4, 16 * 4)  # pointers split into C/D = 4 tokens
    attend = profile_shapes(PART_SPECS["attend_memory"], cfg, limits)
    hw = 64 * 64
    assert attend["memory"] == ((1, hw, 64), (1, 7 * hw, 64), (8, 14 * hw, 64))
    assert attend["obj_ptrs"] == ((1, 0, 64), (1, 64, 64), (8, 92, 64))
    assert attend["curr"] == ((1, 256, 64, 64), (1, 256, 64, 64), (8, 256, 64, 64))
    decode = profile_shapes(PART_SPECS["decode_multimask_mask"], cfg, limits)
    assert decode["point_coords"] == ((1, 1, 2), (1, 1, 2), (8, 16, 2))  # opt: a tracked frame has 1 point
    assert decode["mask_input"] == ((1, 1, 256, 256), (1, 1, 256, 256), (8, 1, 256, 256))
    assert decode["feat_s0"][2] == (8, 32, 256, 256) and decode["feat_s1"][2] == (8, 64, 128, 128)
    assert profile_shapes(PART_SPECS["encode_image"], cfg, limits) == {}  # static [1, 3, 1024, 1024]
    memory = profile_shapes(PART_SPECS["encode_memory"], cfg, limits)
    assert memory["high_res_masks"][2] == (8, 1, 1024, 1024) and memory["object_score_logits"][0] == (1, 1)
    with pytest.raises(ValueError):
        ShapeLimits(max_objects=0)
    with pytest.raises(ValueError):
        ShapeLimits(max_points=2, opt_points=4)


def test_profile_shapes_are_accepted_by_the_exported_graphs():
    """Every profile corner (min/opt/max) is a valid input shape: run each graph there in ONNX Runtime (256 px)."""
    _, export_dir = tiny_export(256)
    cfg = get_config(CONFIG, 256)
    limits = ShapeLimits(max_objects=2, max_points=3, max_cond_frames=2)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    checked = 0
    for name in ("decode_multimask_mask", "attend_memory", "encode_memory"):
        spec = PART_SPECS[name]
        session = ort.InferenceSession(str(export_dir / spec.filename), opts, providers=["CPUExecutionProvider"])
        shapes = profile_shapes(spec, cfg, limits)
        assert set(shapes) == set(spec.inputs)
        for corner in range(3):
            feed = {n: (np.zeros(s[corner], np.int32) if n == "point_labels" else
                        np.random.default_rng(corner).standard_normal(s[corner]).astype(np.float32))
                    for n, s in shapes.items()}
            outputs = session.run(None, feed)
            assert outputs[0].shape[0] == feed[spec.inputs[0]].shape[0]
            checked += 1
    print(f"{checked} profile corners run")


def test_tensorrt_10_and_11_are_supported():
    assert tensorrt_version_problem("10.13.3.9") is None and tensorrt_version_problem("10.0.1") is None
    assert tensorrt_version_problem("11.4.1") is None  # what `pip install tensorrt` gives today
    assert "too old" in tensorrt_version_problem("8.6.1")
    assert "newer" in tensorrt_version_problem("12.0.0")


@pytest.mark.parametrize("version,precision,onnx,strong,flag", [
    ("11.4.1", "fp16", "fp16", True, None),  # 11: strongly typed only, precision from the graph
    ("11.0.0", "bf16", "bf16", True, None),
    ("11.4.1", "fp32", "fp32", True, None),
    ("10.12.0", "fp16", "fp16", True, None),  # the first 10.x that builds the mixed-precision graph
    ("10.13.3.9", "bf16", "bf16", True, None),
    ("10.11.0", "fp16", "fp32", False, "FP16"),  # older 10.x: the fp32 graph with the weak-typing flag
    ("10.3.0", "bf16", "fp32", False, "BF16"),  # JetPack 6's TensorRT
    ("10.3.0", "fp32", "fp32", False, None),
])
def test_precision_plan_per_tensorrt_version(version, precision, onnx, strong, flag):
    plan = trt_backend.precision_plan(version, precision)
    assert (plan.onnx_precision, plan.strongly_typed, plan.builder_flag, plan.tf32) == (onnx, strong, flag, False)
    with pytest.raises(ValueError):
        trt_backend.precision_plan(version, "int8")


def test_unaligned_views_are_copied_to_aligned_memory():
    """A chunk of a batch (`labels[8:16]`) starts 32 bytes into its storage: TensorRT needs 256-byte addresses."""
    labels = torch.arange(64 * 4, dtype=torch.int32).reshape(64, 4)  # [B, N] int32: 16 bytes per row
    base = trt_backend.aligned(labels)
    assert trt_backend.is_aligned(base)
    chunk = base[8:16]
    assert chunk.data_ptr() - base.data_ptr() == 128 and not trt_backend.is_aligned(chunk)
    fixed = trt_backend.aligned(chunk)
    assert trt_backend.is_aligned(fixed) and fixed.data_ptr() != chunk.data_ptr() and torch.equal(fixed, chunk)
    assert trt_backend.aligned(fixed) is fixed  # aligned + contiguous: no copy
    strided = base[:, 1]  # not contiguous
    assert trt_backend.aligned(strided).is_contiguous() and torch.equal(trt_backend.aligned(strided), strided)
    for alignment in (64, 512, 4096):
        assert trt_backend.aligned(chunk, alignment).data_ptr() % alignment == 0
    assert trt_backend.is_aligned(torch.empty(0, 4)[0:0])  # empty: bound to a dummy


def test_refused_tensor_addresses_raise_with_the_name():
    class Context:  # stands in for an IExecutionContext (a mock: no TensorRT here)
        def __init__(self, ok):
            self.ok, self.bound = ok, {}

        def set_tensor_address(self, name, address):
            self.bound[name] = address
            return self.ok

    good = Context(True)
    trt_backend.bind_address(good, "point_labels", 4096)
    assert good.bound == {"point_labels": 4096}
    with pytest.raises(RuntimeError, match="'memory_pos'"):
        trt_backend.bind_address(Context(False), "memory_pos", 8192)
    with pytest.raises(ValueError, match="'point_coords'.*256-byte"):
        trt_backend.bind_address(good, "point_coords", 4096 + 32)


def test_engine_cache_key_names_the_build_recipe(monkeypatch, tmp_path):
    """Same graph, GPU and profile, but a changed build recipe: a new engine is built, the old one never loaded."""
    cfg = get_config(CONFIG, 256)
    profile = profile_shapes(PART_SPECS["attend_memory"], cfg, ShapeLimits())
    identity = {"tensorrt": "10.13.3", "gpu": "NVIDIA H100", "compute_capability": "9.0"}
    cache = ArtifactCache(tmp_path)
    fp16, fp32 = (trt_backend.precision_plan("10.13.3", p) for p in ("fp16", "fp32"))
    parts = engine_key_parts("ab" * 32, identity, fp16, profile, None)
    assert parts["recipe"] == trt_backend.BUILD_RECIPE and parts["precision_plan"]["strongly_typed"]
    first = cache.path_for("trt", parts, ".engine")
    assert cache.path_for("trt", engine_key_parts("ab" * 32, identity, fp16, profile, None), ".engine") == first
    assert cache.path_for("trt", engine_key_parts("ab" * 32, identity, fp32, profile, None), ".engine") != first
    weak = trt_backend.precision_plan("10.11.0", "fp16")  # same precision, another recipe (FP16 flag)
    assert cache.path_for("trt", engine_key_parts("ab" * 32, identity, weak, profile, None), ".engine") != first
    monkeypatch.setattr(trt_backend, "BUILD_RECIPE", trt_backend.BUILD_RECIPE + 1)
    assert cache.path_for("trt", engine_key_parts("ab" * 32, identity, fp16, profile, None), ".engine") != first


def test_backend_refuses_without_tensorrt():
    if NO_TRT is None:
        pytest.skip("TensorRT is present")
    glue = strip_for_glue(build_sam2(CONFIG, image_size=256))
    with pytest.raises(RuntimeError, match="TensorRT backend unavailable"):
        TensorRTBackend(scratch_dir("no_trt"), glue)


@pytest.fixture
def strict_fp32():
    """One fp32 definition on both sides: TensorRT's fp32 engines are built with TF32 off, and torch's cuDNN
    convolutions use TF32 unless told not to (matmuls do not by default)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _export_for(precision: str):
    """The export this TensorRT builds `precision` from (fp16/bf16 parts on >= 10.12 and 11, else fp32)."""
    import tensorrt

    from sam2_ros.backends.factory import ensure_export
    from sam2_ros.model import weights_hash

    plan = trt_backend.precision_plan(tensorrt.__version__, precision)
    if plan.onnx_precision == "fp32":
        return tiny_export(256)[1]
    model = build_sam2(CONFIG, checkpoint=tiny_checkpoint(256), image_size=256)
    return ensure_export(model, weights_hash(tiny_checkpoint(256)), scratch_dir("half_export"),
                         precision=plan.onnx_precision)


@pytest.mark.cuda
@needs_trt
@pytest.mark.parametrize("precision,mask_tol,feat_tol", [("fp32", 1e-2, 1e-3), ("fp16", 0.5, 5e-2)])
def test_engines_match_torch_on_gpu(precision, mask_tol, feat_tol, strict_fp32):
    """Real TensorRT against torch, both IEEE fp32 for fp32 (TF32 off on both sides); fp16 engines from the
    strongly typed mixed-precision export (or the FP16 flag before 10.12)."""
    export_dir = _export_for(precision)
    model = build_sam2(CONFIG, checkpoint=tiny_checkpoint(256), image_size=256, device="cuda")
    cache = scratch_dir("trt_cache")
    trt_be = TensorRTBackend(export_dir, strip_for_glue(copy.deepcopy(model)), "cuda", precision, cache,
                             ShapeLimits(max_objects=4))
    torch_be = TorchBackend(model)
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(1, 3, 256, 256, generator=gen).cuda()
    with torch.inference_mode():
        got, ref = trt_be.encode_image(image), torch_be.encode_image(image)
        err = max(max_rel(g, r) for g, r in zip(got, ref))
        print(f"{precision} encode_image max rel {err:.1e}")
        assert err <= feat_tol
        s0, s1, embed, pos = ref
        for b in (1, 3, 6):  # 6 > max_objects: chunked, point views 4 rows in are not 256-byte aligned
            e, f0, f1 = (t.expand(b, -1, -1, -1) for t in (embed, s0, s1))
            coords = torch.rand(b, 1, 2, generator=gen).cuda() * 256
            labels = torch.ones(b, 1, dtype=torch.int32, device="cuda")
            out, exp = (be.decode(e, f0, f1, coords, labels, None, True) for be in (trt_be, torch_be))
            err = max_abs(out.low_res_multimasks, exp.low_res_multimasks)
            print(f"{precision} decode B={b} mask max abs {err:.1e}")
            assert err <= mask_tol
    # Second construction loads the cached engines.
    again = TensorRTBackend(export_dir, strip_for_glue(copy.deepcopy(model)), "cuda", precision, cache,
                            ShapeLimits(max_objects=4))
    assert again.describe()["precision"] == precision


def _tracked_logits_gap(reference, backend, frames: int) -> float:
    """Largest |mask logit| difference between two backends tracking the same clicked object over random frames."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (200, 300, 3)).astype(np.uint8) for _ in range(frames)]
    results = []
    for be in (reference, backend):
        tracker = StreamingTracker(be)
        tracker.track(images[0])
        tracker.add_prompt(1, points=np.array([[90, 70]]), labels=np.array([1]))
        results.append([tracker.track(f).mask_logits for f in images[1:]])
    return max(float(np.abs(a - b).max()) for a, b in zip(*results))


@pytest.mark.cuda
@needs_trt
def test_tracker_on_tensorrt_fp32(strict_fp32):
    model = build_sam2(CONFIG, checkpoint=tiny_checkpoint(256), image_size=256, device="cuda")
    _, export_dir = tiny_export(256)
    trt_be = TensorRTBackend(export_dir, strip_for_glue(copy.deepcopy(model)), "cuda", "fp32",
                             scratch_dir("trt_cache"))
    err = _tracked_logits_gap(TorchBackend(model), trt_be, frames=5)
    print(f"tracker TensorRT fp32 vs torch: mask logits max abs {err:.1e}")
    assert err <= 5e-2


@pytest.mark.cuda
@needs_trt
def test_engines_run_on_their_own_stream_ordered_after_the_callers():
    """The caller works on a non-default stream and produces the input with a long kernel chain: the engine (on
    its own stream) must wait for it, and the caller must see the engine's outputs."""
    _, export_dir = tiny_export(256)
    model = build_sam2(CONFIG, checkpoint=tiny_checkpoint(256), image_size=256, device="cuda")
    trt_be = TensorRTBackend(export_dir, strip_for_glue(copy.deepcopy(model)), "cuda", "fp32",
                             scratch_dir("trt_cache"))
    assert trt_be.stream.cuda_stream not in (0, torch.cuda.current_stream().cuda_stream)
    gen = torch.Generator().manual_seed(3)
    base = torch.randn(1, 3, 256, 256, generator=gen).cuda()
    with torch.inference_mode():
        ref = TorchBackend(model).encode_image(base)
        caller = torch.cuda.Stream()
        caller.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(caller):
            slow = torch.randn(4096, 4096, device="cuda")
            for _ in range(20):  # keeps the caller's stream busy for a while before the input exists
                slow = torch.tanh(slow @ slow)
            image = base + 0.0 * slow[:3, :256].sum()  # the input depends on the slow chain
            got = trt_be.encode_image(image)
            total = sum(t.sum() for t in got)  # read on the caller's stream
        torch.cuda.synchronize()
    assert torch.isfinite(total)
    err = max(max_rel(g, r) for g, r in zip(got, ref))
    print(f"encode_image on a busy caller stream: max rel {err:.1e}")
    assert err <= 1e-3


@pytest.mark.cuda
@needs_trt
def test_tracker_on_tensorrt_for_a_sam2_0_config(tmp_path):
    """SAM 2.0's memory encoder graph has no object_score_logits input: profiles and bindings follow the graph."""
    ckpt = write_checkpoint(tmp_path / "sam2_hiera_t.pt", "sam2_hiera_t")
    trt_be = create_backend("tensorrt", "sam2_hiera_t", checkpoint=str(ckpt), image_size=256, device="cuda",
                            precision="fp32", cache_dir=tmp_path / "cache")
    assert trt_be.name == "tensorrt" and trt_be.inputs["encode_memory"] == ["pix_feat", "high_res_masks"]
    model = build_sam2("sam2_hiera_t", checkpoint=ckpt, image_size=256, device="cuda")
    err = _tracked_logits_gap(TorchBackend(model), trt_be, frames=4)
    print(f"sam2_hiera_t tracker TensorRT fp32 vs torch: mask logits max abs {err:.1e}")
    assert err <= 5e-2
