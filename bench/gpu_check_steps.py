"""The measurements of bench/gpu_check.py, one function per step; each fills `ctx.data` as it goes, so a step
stopped by its time budget still leaves what it measured. Imports only torch, numpy and sam2_ros (ROS-free core).

Sizes come from a Plan: the GPU plan (1024 px, t/s/b+/l, 1 and 8 objects, fp32/bf16/fp16, torch.compile) or the
CPU smoke plan (micro model at 128 px, a few frames; it exercises the same code in `make test`).
"""
from __future__ import annotations

import importlib
import importlib.util
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gpu_check_plan import PARTS, Plan

ROOT = Path(__file__).resolve().parents[1]
MICRO_CHECKPOINT = ROOT / "models" / "sam2_micro.pt"
TARGETS_MS = {("sam2.1_hiera_t", 1): 5.0, ("sam2.1_hiera_t", 8): 8.0}  # per tracked frame at 1024 px on an H100
CAMERA = (480, 640)  # frames the tracker gets (H, W): masks come back at this size


@dataclass
class Context:
    """What a step gets: the plan, its record, time left, a progress printer, and objects shared between steps."""

    plan: Plan
    data: dict[str, Any]
    left: Callable[[], float]  # seconds left in this step
    log: Callable[[str], None]
    shared: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------- helpers
def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_ms(fn: Callable[[], Any], iters: int, device: str) -> float:
    """Mean milliseconds of fn() after one warm-up call (CUDA events on a GPU, wall clock on the CPU)."""
    fn()
    _sync(device)
    if device == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / iters
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return 1e3 * (time.perf_counter() - t0) / iters


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (b is the reference)."""
    a, b = a.float(), b.float()
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-12)) if b.numel() else 0.0


def mask_iou(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """IoU of the masks logits > 0 of a and b (1.0 when both are empty)."""
    a, b = np.asarray(torch.as_tensor(a).float().cpu()) > 0, np.asarray(torch.as_tensor(b).float().cpu()) > 0
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def build_model(config: str, size: int, device: str, checkpoint: Path | None = None) -> Any:
    """A model with seeded random weights (speed and agreement do not depend on them), or a checkpoint's."""
    from sam2_ros.model import build_sam2

    torch.manual_seed(0)
    return build_sam2(config, checkpoint=str(checkpoint) if checkpoint else None, image_size=size, device=device)


def camera_frames(count: int, objects: int = 4) -> list[np.ndarray]:
    """Synthetic camera frames (moving shapes), [H, W, 3] uint8."""
    from sam2_ros.synthetic import SyntheticScene

    scene = SyntheticScene(*CAMERA, num_objects=objects, seed=0)
    return [scene.frame(i).rgb for i in range(count)]


def prompt_points(objects: int) -> list[tuple[float, float]]:
    """One click per object on a 4 x 2 grid over the camera frame."""
    h, w = CAMERA
    return [((k % 4 + 0.5) * w / 4, (k // 4 % 2 + 0.5) * h / 2) for k in range(objects)]


def full_bank_inputs(backend: Any, objects: int) -> dict[str, torch.Tensor]:
    """Inputs of every part for B objects with a full memory bank (7 frames, 16 pointers), as a tracked frame."""
    cfg = backend.config
    s, h, d, dev = cfg.image_size, cfg.feat_size, cfg.mem_dim, backend.device
    gen = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen).to(dev)

    image = rand(1, 3, s, s)
    with torch.inference_mode():
        s0, s1, embed, pos = (t.clone() for t in backend.encode_image(image))
    ms, ptrs = cfg.num_maskmem * h * h, 16 * (cfg.hidden_dim // d)
    b = objects
    return {"image": image, "s0": s0.expand(b, -1, -1, -1), "s1": s1.expand(b, -1, -1, -1),
            "embed": embed.expand(b, -1, -1, -1), "pos": pos.expand(b, -1, -1, -1), "memory": rand(b, ms, d),
            "memory_pos": rand(b, ms, d), "ptrs": rand(b, ptrs, d), "ptr_pos": rand(b, ptrs, d),
            "high_res": rand(b, 1, s, s) * 8, "score": torch.ones(b, 1, device=dev)}


def part_ms(backend: Any, objects: int, iters: int, device: str) -> dict[str, float]:
    """Milliseconds of each part on full-bank inputs for B objects (tracked-frame shapes)."""
    x = full_bank_inputs(backend, objects)
    calls = {
        "encode_image": lambda: backend.encode_image(x["image"]),
        "attend_memory": lambda: backend.attend_memory(x["embed"], x["pos"], x["memory"], x["memory_pos"],
                                                       x["ptrs"], x["ptr_pos"]),
        "decode": lambda: backend.decode(x["embed"], x["s0"], x["s1"], None, None, None, True),
        "encode_memory": lambda: backend.encode_memory(x["embed"], x["high_res"], x["score"], False),
    }
    with torch.inference_mode():
        return {name: round(time_ms(fn, iters, device), 3) for name, fn in calls.items()}


def tracked_frame_ms(backend: Any, objects: int, plan: Plan, frames: list[np.ndarray]) -> dict[str, float]:
    """Wall milliseconds of StreamingTracker.track (image in, numpy masks out) with B objects and a full bank."""
    from sam2_ros.tracking import StreamingTracker

    tracker = StreamingTracker(backend)
    tracker.track(frames[0])
    for k, (x, y) in enumerate(prompt_points(objects), 1):
        tracker.add_prompt(k, points=np.array([[x, y]]), labels=np.array([1]))
    for i in range(1, plan.warm_frames + 1):
        tracker.track(frames[i % len(frames)])
    times = []
    for i in range(plan.iters):
        _sync(plan.device)
        t0 = time.perf_counter()
        tracker.track(frames[(plan.warm_frames + 1 + i) % len(frames)])  # returns numpy: synchronised
        times.append(1e3 * (time.perf_counter() - t0))
    return {"frame_ms": round(float(np.mean(times)), 3), "frame_p95_ms": round(float(np.percentile(times, 95)), 3)}


def _version(module: str) -> str | None:
    try:
        return str(importlib.import_module(module).__version__)
    except Exception:  # not installed, or broken: either way not usable here
        return None


# ---------------------------------------------------------------------------------------------------- steps
def step_environment(ctx: Context) -> None:
    """Versions of everything that decides the numbers."""
    d = ctx.data
    d.update(python=platform.python_version(), torch=torch.__version__, cuda=torch.version.cuda,
             numpy=np.__version__, triton=_version("triton"), onnx=_version("onnx"),
             onnxruntime=_version("onnxruntime"), tensorrt=_version("tensorrt") or "skipped: no TensorRT",
             tf32_matmul=torch.backends.cuda.matmul.allow_tf32, tf32_cudnn=torch.backends.cudnn.allow_tf32,
             cpu_threads=torch.get_num_threads())
    if ctx.plan.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        d.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                 gpu_memory_gib=round(props.total_memory / 2**30, 1), bf16=torch.cuda.is_bf16_supported())
        if shutil.which("nvidia-smi"):
            out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=15)
            d["driver"] = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    ctx.log(" ".join(f"{k}={v}" for k, v in d.items()))


def step_cuda_graphs(ctx: Context) -> None:
    """CUDA graphs (compile="reduce-overhead", warmed up) against eager, fp32, micro model with its real weights:
    each part called >= 3 times with different inputs and every kept output compared afterwards (a replay must not
    overwrite an earlier result), then a tracker with a late prompt on an older history frame; also counts graphs
    compiled after the warm-up (should be 0)."""
    from sam2_ros.backends.torch_backend import TorchBackend
    from sam2_ros.tracking import StreamingTracker, TrackerOptions

    plan, d = ctx.plan, ctx.data
    size = plan.graph_size
    model = build_model("sam2_micro", size, plan.device, MICRO_CHECKPOINT if MICRO_CHECKPOINT.is_file() else None)
    eager = TorchBackend(model)
    mode = "reduce-overhead" if plan.compile else False
    d["mode"] = mode or "eager (smoke: no compile)"
    graphs = TorchBackend(model, compile=mode)
    t0 = time.perf_counter()
    d["warmup_shapes"] = graphs.warm_up(max_objects=2)
    d["warmup_s"] = round(time.perf_counter() - t0, 1)
    ctx.log(f"warm-up {d['warmup_s']} s over {len(d['warmup_shapes'])} memory-attention shapes")
    compiled_before = _graph_count()
    gen = torch.Generator().manual_seed(1)
    images = [torch.randn(1, 3, size, size, generator=gen).to(plan.device) for _ in range(3)]
    with torch.inference_mode():
        kept = [graphs.encode_image(im) for im in images]  # all three kept while later calls replay
        d["encode_image_rel_err"] = [max(rel_err(a, b) for a, b in zip(k, eager.encode_image(im)))
                                     for k, im in zip(kept, images)]
        h, dim = model.config.feat_size, model.config.mem_dim
        outs, refs = [], []
        for i, (_, _, embed, pos) in enumerate(kept):  # attend_memory: B = 2, pointers > 0, different memories
            memory = torch.randn(2, (i + 1) * h * h, dim, generator=gen).to(plan.device)
            ptrs = torch.randn(2, 4 * (i + 1), dim, generator=gen).to(plan.device)
            args = (embed.expand(2, -1, -1, -1), pos.expand(2, -1, -1, -1), memory, memory.clone(), ptrs,
                    ptrs.clone())  # distinct tensors: aliasing is a guard a stream never meets
            outs.append(graphs.attend_memory(*args))
            refs.append(eager.attend_memory(*args))
        d["attend_memory_rel_err"] = [rel_err(o, r) for o, r in zip(outs, refs)]
    ctx.log(f"encode_image rel err {d['encode_image_rel_err']}, attend_memory {d['attend_memory_rel_err']}")
    frames = camera_frames(10)
    results = []
    for backend in (graphs, eager):
        tracker = StreamingTracker(backend, TrackerOptions(history=8))
        for i in range(3):
            tracker.track(frames[i], stamp=i)
        tracker.add_prompt(1, points=np.array([prompt_points(1)[0]]), labels=np.array([1]), stamp=2)
        for i in range(3, 7):
            tracker.track(frames[i], stamp=i)
        late = tracker.add_prompt(2, box=np.array([200.0, 120.0, 440.0, 360.0]), stamp=3)  # an older history frame
        runs = [late] + [tracker.track(frames[i], stamp=i) for i in range(7, 10)]
        results.append(runs)
    d["tracker_max_abs_logit_diff"] = max(float(np.abs(a.mask_logits - b.mask_logits).max())
                                          for a, b in zip(*results))
    d["tracker_min_mask_iou"] = min(mask_iou(a.mask_logits, b.mask_logits) for a, b in zip(*results))
    d["graphs_compiled_after_warmup"] = _graph_count() - compiled_before
    ctx.log(f"tracker with late prompt: max |logit diff| {d['tracker_max_abs_logit_diff']:.2e}, "
            f"min mask IoU {d['tracker_min_mask_iou']:.4f}, graphs compiled after warm-up "
            f"{d['graphs_compiled_after_warmup']}")
    worst = max(d["encode_image_rel_err"] + d["attend_memory_rel_err"])
    if worst > 1e-2 or d["tracker_min_mask_iou"] < 0.98:  # a stale replay buffer is off by O(1)
        raise AssertionError(f"compiled outputs disagree with eager: rel err {worst:.2e}, "
                             f"mask IoU {d['tracker_min_mask_iou']:.4f}")


def _graph_count() -> int:
    """Graphs torch.compile has made in this process so far."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return 0
    return int(counters["stats"]["unique_graphs"])


def step_precision(ctx: Context) -> None:
    """Half precision against fp32 on the same inputs, part by part (tiny model): feature error, IoU error and mask
    agreement of the decoder's candidates."""
    from sam2_ros.backends.torch_backend import TorchBackend

    plan = ctx.plan
    model = build_model(plan.tiny, plan.image_size, plan.device)
    ref = TorchBackend(model)
    rows = ctx.data.setdefault("rows", [])
    for precision in [p for p in plan.precisions if p != "fp32"]:
        half = TorchBackend(model, precision=precision)
        x = full_bank_inputs(ref, 2)
        coords = torch.tensor([[[300.0, 200.0]], [[600.0, 500.0]]], device=plan.device) * plan.image_size / 1024
        labels = torch.ones(2, 1, dtype=torch.int32, device=plan.device)
        with torch.inference_mode():
            feats = [b.encode_image(x["image"]) for b in (ref, half)]
            dec = [b.decode(x["embed"], x["s0"], x["s1"], coords, labels, None, True) for b in (ref, half)]
            att = [b.attend_memory(x["embed"], x["pos"], x["memory"], x["memory_pos"], x["ptrs"], x["ptr_pos"])
                   for b in (ref, half)]
            mem = [b.encode_memory(x["embed"], x["high_res"], x["score"], False)[0] for b in (ref, half)]
        row = {"precision": precision, "config": plan.tiny,
               "encode_image_rel_err": max(rel_err(h, r) for h, r in zip(feats[1], feats[0])),
               "attend_memory_rel_err": rel_err(att[1], att[0]), "encode_memory_rel_err": rel_err(mem[1], mem[0]),
               "decode_rel_err": rel_err(dec[1].low_res_multimasks, dec[0].low_res_multimasks),
               "iou_max_abs_err": float((dec[1].ious - dec[0].ious).abs().max()),
               "mask_iou": mask_iou(dec[1].low_res_multimasks, dec[0].low_res_multimasks)}
        rows.append({k: round(v, 5) if isinstance(v, float) else v for k, v in row.items()})
        ctx.log(f"{precision}: " + ", ".join(f"{k} {v}" for k, v in rows[-1].items() if k != "precision"))


def _time_backend(ctx: Context, backend: Any, config: str, mode: str, precision: str,
                  frames: list[np.ndarray]) -> None:
    """One timing row per object count (parts + tracked frame), skipping what the time left cannot hold."""
    plan = ctx.plan
    rows = ctx.data.setdefault("rows", [])
    for objects in plan.objects:
        if ctx.left() < 10:
            ctx.data.setdefault("skipped", []).append(f"{config} {mode} {precision} B={objects}: no time left")
            continue
        if plan.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        row = {"config": config, "image_size": plan.image_size, "mode": mode, "precision": precision,
               "objects": objects, **part_ms(backend, objects, plan.iters, plan.device),
               **tracked_frame_ms(backend, objects, plan, frames)}
        row["fps"] = round(1000.0 / row["frame_ms"], 1)
        if plan.device == "cuda":
            row["peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
        target = TARGETS_MS.get((config, objects)) if plan.image_size == 1024 else None
        if target is not None:
            row["target_ms"] = target
        rows.append(row)
        ctx.log(f"{config}@{plan.image_size} {mode} {precision} B={objects}: "
                + " ".join(f"{p} {row[p]:.2f}" for p in PARTS)
                + f" | tracked frame {row['frame_ms']:.2f} ms ({row['fps']} FPS)"
                + (f", target {target} ms" if target else ""))


def step_timing_tiny(ctx: Context) -> None:
    """The tiny model at the plan's size: every precision eagerly, then the shipped GPU path (bf16 + CUDA graphs,
    warmed up), 1 and 8 objects: ms per part and per tracked frame."""
    from sam2_ros.backends.torch_backend import TorchBackend

    plan = ctx.plan
    model = build_model(plan.tiny, plan.image_size, plan.device)
    frames = camera_frames(24)
    for precision in plan.precisions:
        _time_backend(ctx, TorchBackend(model, precision=precision), plan.tiny, "eager", precision, frames)
    if plan.compile and ctx.left() > 30:
        compiled = TorchBackend(model, precision="bf16", compile="reduce-overhead")
        t0 = time.perf_counter()
        compiled.warm_up(max(plan.objects))
        ctx.data["compile_warmup_s"] = round(time.perf_counter() - t0, 1)
        ctx.log(f"compiled bf16 warm-up {ctx.data['compile_warmup_s']} s")
        ctx.shared["tiny_fast"] = compiled
        _time_backend(ctx, compiled, plan.tiny, "compiled", "bf16", frames)


def step_stream(ctx: Context) -> None:
    """A long stream (2 objects): GPU memory and the tracker's own bytes must stay flat; ms per frame."""
    from sam2_ros.backends.torch_backend import TorchBackend
    from sam2_ros.tracking import StreamingTracker

    plan, d = ctx.plan, ctx.data
    backend = ctx.shared.get("tiny_fast")
    if backend is None:
        backend = TorchBackend(build_model(plan.tiny, plan.image_size, plan.device),
                               precision="bf16" if plan.device == "cuda" else "fp32")
    d["backend"] = f"{backend.precision} compile={backend.compile}"
    frames = camera_frames(32)
    tracker = StreamingTracker(backend)
    tracker.track(frames[0])
    for k, (x, y) in enumerate(prompt_points(2), 1):
        tracker.add_prompt(k, points=np.array([[x, y]]), labels=np.array([1]))
    if plan.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    samples, times = [], []
    # From frame 20 on the bank is full (16 pointer frames, 15 history frames): nothing may grow after it.
    first = min(max(plan.stream_frames // 6, 20), plan.stream_frames)
    checkpoints = {first, (first + plan.stream_frames) // 2, plan.stream_frames}
    for i in range(1, plan.stream_frames + 1):
        t0 = time.perf_counter()
        tracker.track(frames[i % len(frames)])
        times.append(1e3 * (time.perf_counter() - t0))
        if i in checkpoints:
            sample = {"frame": i, "tracker_mib": round(tracker.memory_bytes() / 2**20, 2)}
            if plan.device == "cuda":
                sample["allocated_mib"] = round(torch.cuda.memory_allocated() / 2**20, 1)
                sample["max_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            samples.append(sample)
            ctx.log(f"frame {i}: {sample}")
        if ctx.left() < 3:
            d["stopped_at_frame"] = i
            break
    d.update(samples=samples, frame_ms_mean=round(float(np.mean(times)), 2),
             frame_ms_p95=round(float(np.percentile(times, 95)), 2), frames=len(times))
    key = "max_allocated_mib" if plan.device == "cuda" else "tracker_mib"
    d["growth_mib"] = round(samples[-1][key] - samples[0][key], 2) if len(samples) > 1 else None
    if d["growth_mib"] is not None and d["growth_mib"] > 1.0:
        raise AssertionError(f"memory grew by {d['growth_mib']} MiB between frame {samples[0]['frame']} and "
                             f"{samples[-1]['frame']}")


def step_timing_sizes(ctx: Context) -> None:
    """The other configs eagerly (bf16 first, then fp32 and fp16), as far as the budget goes."""
    from sam2_ros.backends.torch_backend import TorchBackend

    plan = ctx.plan
    frames = camera_frames(24)
    order = [p for p in ("bf16", "fp32", "fp16") if p in plan.precisions]
    for config in plan.sizes:
        if ctx.left() < 20:
            ctx.data.setdefault("skipped", []).append(f"{config}: no time left")
            continue
        model = build_model(config, plan.image_size, plan.device)
        for precision in order:
            _time_backend(ctx, TorchBackend(model, precision=precision), config, "eager", precision, frames)
        del model
        if plan.device == "cuda":
            torch.cuda.empty_cache()


def step_tensorrt(ctx: Context) -> None:
    """TensorRT engines (micro model, real weights) against torch, and their tracked-frame time; only where
    `import tensorrt` works."""
    from sam2_ros.backends.tensorrt_backend import tensorrt_unavailable

    plan = ctx.plan
    reason = tensorrt_unavailable(plan.device)
    if reason:
        ctx.data["skipped"] = f"no TensorRT: {reason}"
        ctx.log(ctx.data["skipped"])
        return
    from sam2_ros.backends.factory import create_backend
    from sam2_ros.backends.torch_backend import TorchBackend

    size = plan.graph_size
    cache = Path(ctx.shared["out"]) / "cache"
    ref = TorchBackend(build_model("sam2_micro", size, plan.device, MICRO_CHECKPOINT))
    rows = ctx.data.setdefault("rows", [])
    frames = camera_frames(24)
    for precision in ("fp16", "fp32"):
        t0 = time.perf_counter()
        engine = create_backend("tensorrt", "sam2_micro", checkpoint=str(MICRO_CHECKPOINT), image_size=size,
                                device="cuda", precision=precision, cache_dir=cache, max_objects=max(plan.objects))
        x = full_bank_inputs(ref, 2)
        with torch.inference_mode():
            err = max(rel_err(a, b) for a, b in zip(engine.encode_image(x["image"]), ref.encode_image(x["image"])))
            dec = [b.decode(x["embed"], x["s0"], x["s1"], None, None, None, True) for b in (engine, ref)]
        row = {"precision": precision, "build_or_load_s": round(time.perf_counter() - t0, 1),
               "encode_image_rel_err": round(err, 5),
               "mask_iou": round(mask_iou(dec[0].low_res_multimasks, dec[1].low_res_multimasks), 5)}
        row.update(tracked_frame_ms(engine, 1, plan, frames))
        rows.append(row)
        ctx.log(f"TensorRT {precision}: {row}")


def step_pytest_cuda(ctx: Context) -> None:
    """The test suite's CUDA tests (`pytest -m cuda`) where pytest is installed; their files only."""
    if ctx.plan.device != "cuda":
        ctx.data["skipped"] = "smoke run: the CUDA tests skip on the CPU anyway"
        return
    if importlib.util.find_spec("pytest") is None:
        ctx.data["skipped"] = "pytest is not installed"
        return
    files, excluded = [], []
    oracle = importlib.util.find_spec("sam2") is not None  # Meta's reference package, a test-only dependency
    for path in sorted((ROOT / "test").glob("test_*.py")):
        text = path.read_text()
        if "mark.cuda" in text:
            needs_oracle = "backend_util" in text or "from oracle" in text
            (files if oracle or not needs_oracle else excluded).append(str(path.relative_to(ROOT)))
    ctx.data["excluded_need_sam2_oracle"] = excluded
    timeout = max(ctx.left() - 5, 5)
    try:
        # -o addopts=: pytest.ini's options need plugins (pytest-timeout) a GPU machine may lack
        done = subprocess.run([sys.executable, "-m", "pytest", "-o", "addopts=", "-m", "cuda", "-q", "-rs",
                               "-p", "no:cacheprovider", "--continue-on-collection-errors", *files], cwd=str(ROOT),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        ctx.data.update(files=files, timed_out_after_s=round(timeout), tail=str(err.stdout or "")[-2000:])
        raise TimeoutError(f"pytest -m cuda did not finish in {timeout:.0f} s") from None
    lines = done.stdout.strip().splitlines()
    ctx.data.update(files=files, returncode=done.returncode, summary=lines[-1] if lines else "",
                    tail="\n".join(lines[-30:]))
    ctx.log(ctx.data["summary"])
    if done.returncode not in (0, 5):  # 5: nothing collected
        raise AssertionError(f"pytest -m cuda: {ctx.data['summary']}")
