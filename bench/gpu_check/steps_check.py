"""Correctness steps of bench/gpu_check.py: environment, CUDA vs CPU (fp32), CUDA graphs vs eager, half vs fp32."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time

import numpy as np
import torch
from gpu_check.common import (MICRO_CHECKPOINT, Context, build_model, camera_frames, full_bank_inputs, graph_count,
                              mask_iou, prompt_points, rel_err, require, track_run, version_of)
from gpu_check.plan import COMPILE_BUDGETS_S, CPU_VS_CUDA, HALF_VS_FP32


def step_environment(ctx: Context) -> None:
    """Versions of everything that decides the numbers."""
    d = ctx.data
    d.update(python=platform.python_version(), torch=torch.__version__, cuda=torch.version.cuda,
             numpy=np.__version__, triton=version_of("triton"), onnx=version_of("onnx"),
             onnxruntime=version_of("onnxruntime"), tensorrt=version_of("tensorrt") or "skipped: no TensorRT",
             tf32_matmul=torch.backends.cuda.matmul.allow_tf32, tf32_cudnn=torch.backends.cudnn.allow_tf32,
             cpu_threads=torch.get_num_threads(), fp32="IEEE fp32 everywhere (TF32 off in torch and TensorRT)")
    if ctx.plan.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        d.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                 gpu_memory_gib=round(props.total_memory / 2**30, 1), bf16=torch.cuda.is_bf16_supported())
        if shutil.which("nvidia-smi"):
            out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=15)
            d["driver"] = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    ctx.log(" ".join(f"{k}={v}" for k, v in d.items()))


def _compare_devices(ctx: Context, name: str, config: str, size: int, checkpoint, frames: list[np.ndarray]) -> None:
    """Encoder features and tracked-frame logits of one model, on the plan's device and on the CPU (fp32 both)."""
    from sam2_ros.backends.torch_backend import TorchBackend

    models = {dev: build_model(config, size, dev, checkpoint) for dev in (ctx.plan.device, "cpu")}
    image = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        feats = {dev: TorchBackend(m).encode_image(image.to(dev)) for dev, m in models.items()}
    features = max(rel_err(a.cpu(), b) for a, b in zip(feats[ctx.plan.device], feats["cpu"]))
    runs = {dev: track_run(TorchBackend(m), frames) for dev, m in models.items()}
    logits, iou = 0.0, 1.0
    for got, want in zip(runs[ctx.plan.device], runs["cpu"]):
        if len(want):
            scale = max(float(np.abs(want.mask_logits).max()), 1e-6)
            logits = max(logits, float(np.abs(got.mask_logits - want.mask_logits).max()) / scale)
            iou = min(iou, mask_iou(got.mask_logits, want.mask_logits))
    ctx.data[name] = {"features_rel": features, "logits_rel": logits, "mask_iou": iou, "frames": len(frames)}
    ctx.log(f"{name}: {ctx.data[name]}")


def step_cpu_vs_cuda(ctx: Context) -> None:
    """CUDA fp32 against CPU fp32 (the reference the CPU tests check against Meta's code): the micro model with its
    real weights at the graph size, and random-weight tiny at the plan's size, encoder features and the logits of
    a prompted frame + tracked frames. On the smoke plan both sides are the CPU (the code path only)."""
    plan = ctx.plan
    torch.set_num_threads(os.cpu_count() or 1)  # the CPU side of tiny at 1024 takes seconds per frame
    frames = camera_frames(plan.compare_frames)
    _compare_devices(ctx, "micro", "sam2_micro", plan.graph_size, MICRO_CHECKPOINT, frames)
    _compare_devices(ctx, "tiny", plan.tiny, plan.image_size, None, frames)
    limits = CPU_VS_CUDA
    require(ctx, {f"{m}.{k}": (ctx.data[m][k], limits[k], "min" if k == "mask_iou" else "max")
                  for m in ("micro", "tiny") for k in limits})


def step_cuda_graphs(ctx: Context) -> None:
    """CUDA graphs (compile="reduce-overhead", warmed up within its compile budget) against eager, fp32, micro model
    with its real weights: each part called >= 3 times with different inputs and every kept output compared
    afterwards (a replay must not overwrite an earlier result), then a tracker with a late prompt on an older
    history frame; also counts graphs compiled after the warm-up (must be 0)."""
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
    d["compile_s"] = round(time.perf_counter() - t0, 1)
    d["compile_budget_s"] = COMPILE_BUDGETS_S["cuda_graphs"]
    d["graphs_in_warmup"] = graph_count()
    ctx.log(f"warm-up {d['compile_s']} s over {len(d['warmup_shapes'])} memory-attention shapes")
    compiled_before = graph_count()
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
    d["graphs_compiled_after_warmup"] = graph_count() - compiled_before
    ctx.log(f"tracker with late prompt: max |logit diff| {d['tracker_max_abs_logit_diff']:.2e}, "
            f"min mask IoU {d['tracker_min_mask_iou']:.4f}, graphs compiled after warm-up "
            f"{d['graphs_compiled_after_warmup']}")
    worst = max(d["encode_image_rel_err"] + d["attend_memory_rel_err"])  # a stale replay buffer is off by O(1)
    require(ctx, {"compiled_rel_err": (worst, 1e-2, "max"), "tracker_mask_iou": (d["tracker_min_mask_iou"], 0.98, "min"),
                  "graphs_after_warmup": (d["graphs_compiled_after_warmup"], 0, "max"),
                  "compile_s": (d["compile_s"], d["compile_budget_s"], "max")})


def step_precision(ctx: Context) -> None:
    """Half precision against fp32 on the same inputs, part by part (tiny model): feature error, IoU error and mask
    agreement of the decoder's candidates; fails above HALF_VS_FP32."""
    from sam2_ros.backends.torch_backend import TorchBackend

    plan = ctx.plan
    model = build_model(plan.tiny, plan.image_size, plan.device)
    ref = TorchBackend(model)
    rows = ctx.data.setdefault("rows", [])
    checks = {}
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
        limit = HALF_VS_FP32[precision]
        checks[f"{precision}.features_rel"] = (row["encode_image_rel_err"], limit["features_rel"], "max")
        checks[f"{precision}.mask_iou"] = (row["mask_iou"], limit["mask_iou"], "min")
    require(ctx, checks)
