"""GPU benchmark: ms per inference part and frames per second of a tracked frame, per config, object count, backend
and precision. Needs torch with CUDA (TensorRT 10 optional); no ROS.

    python bench/gpu.py [--configs t s b+ l] [--image-size 1024] [--objects 1 4 8]
                        [--backends torch tensorrt] [--precisions fp32 fp16 bf16] [--compile]
                        [--iters 30] [--warmup 5] [--cache-dir DIR] [--json bench/out/gpu.json]

A tracked frame with B objects = image encoder (once) + memory attention (B rows, full bank: 7 memory frames and
16 pointers) + prompt encoder/mask decoder (B rows, no prompt, multimask as on tracked frames) + memory encoder
(B rows). Random weights (speed does not depend on them). torch fp16/bf16 = torch.autocast; --compile adds
torch.compile'd submodules. TensorRT engines are built once per config/precision and cached (--cache-dir), which
takes minutes for the large config. Without a CUDA GPU it says so and exits 0.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHORT = {"t": "sam2.1_hiera_t", "s": "sam2.1_hiera_s", "b+": "sam2.1_hiera_b+", "l": "sam2.1_hiera_l"}
PARTS = ("encode_image", "attend_memory", "decode", "encode_memory")
TARGETS_MS = {("sam2.1_hiera_t", 1): 5.0, ("sam2.1_hiera_t", 8): 8.0}  # issue 6, H100, 1024 px


def cuda_ms(fn, iters: int, warmup: int) -> float:
    """Mean milliseconds of fn() on the current stream (CUDA events), after warm-up calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


def frame_inputs(backend, objects: int) -> dict:
    """Realistic inputs of every part for B objects with a full memory bank (outputs of the previous parts)."""
    cfg = backend.config
    s, h, d = cfg.image_size, cfg.feat_size, cfg.mem_dim
    dev = backend.device
    gen = torch.Generator(device="cpu").manual_seed(0)
    image = torch.randn(1, 3, s, s, generator=gen).to(dev)
    with torch.inference_mode():
        s0, s1, embed, pos = backend.encode_image(image)
    ms = cfg.num_maskmem * h * h
    ptrs = 16 * (cfg.hidden_dim // d)
    rand = lambda *shape: torch.randn(*shape, generator=gen).to(dev)  # noqa: E731
    return {"image": image, "s0": s0.expand(objects, -1, -1, -1), "s1": s1.expand(objects, -1, -1, -1),
            "embed": embed.expand(objects, -1, -1, -1), "pos": pos.expand(objects, -1, -1, -1),
            "memory": rand(objects, ms, d), "memory_pos": rand(objects, ms, d), "ptrs": rand(objects, ptrs, d),
            "ptr_pos": rand(objects, ptrs, d), "high_res": rand(objects, 1, s, s) * 8,
            "score": torch.ones(objects, 1, device=dev)}


def part_calls(backend, x: dict) -> dict:
    """One closure per part (inputs fixed), plus the chained frame."""
    calls = {
        "encode_image": lambda: backend.encode_image(x["image"]),
        "attend_memory": lambda: backend.attend_memory(x["embed"], x["pos"], x["memory"], x["memory_pos"],
                                                       x["ptrs"], x["ptr_pos"]),
        "decode": lambda: backend.decode(x["embed"], x["s0"], x["s1"], None, None, None, True),
        "encode_memory": lambda: backend.encode_memory(x["embed"], x["high_res"], x["score"], False),
    }

    def frame():
        s0, s1, embed, pos = backend.encode_image(x["image"])
        b = x["embed"].shape[0]
        pix = backend.attend_memory(embed.expand(b, -1, -1, -1), pos.expand(b, -1, -1, -1), x["memory"],
                                    x["memory_pos"], x["ptrs"], x["ptr_pos"])
        out = backend.decode(pix, s0.expand(b, -1, -1, -1), s1.expand(b, -1, -1, -1), None, None, None, True)
        return backend.encode_memory(embed.expand(b, -1, -1, -1), out.high_res_masks, out.object_score_logits)

    calls["frame"] = frame
    return calls


def torch_backend(config: str, size: int, compile_model: bool):
    from sam2_ros.backends.torch_backend import TorchBackend
    from sam2_ros.model import build_sam2

    model = build_sam2(config, image_size=size, device="cuda")
    if compile_model:
        for name in ("image_encoder", "memory_attention", "sam_mask_decoder", "memory_encoder"):
            setattr(model, name, torch.compile(getattr(model, name)))
    return TorchBackend(model)


def tensorrt_backend(config: str, size: int, precision: str, max_objects: int, cache_dir: Path):
    from sam2_ros.backends.exported import strip_for_glue
    from sam2_ros.backends.factory import ensure_export
    from sam2_ros.backends.tensorrt_backend import ShapeLimits, TensorRTBackend
    from sam2_ros.export.onnx_export import state_hash
    from sam2_ros.model import build_sam2

    torch.manual_seed(0)  # same random weights every run, so exports and engines are reused
    model = build_sam2(config, image_size=size, device="cpu")
    export_dir = ensure_export(model, state_hash(model), cache_dir)
    return TensorRTBackend(export_dir, strip_for_glue(model), "cuda", precision, cache_dir / "tensorrt",
                           ShapeLimits(max_objects=max_objects))


def run_case(backend, label: str, precision: str, objects_list, iters: int, warmup: int, autocast: bool) -> list:
    rows = []
    amp = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    for objects in objects_list:
        ctx = torch.autocast("cuda", dtype=amp) if (autocast and amp) else contextlib.nullcontext()
        with torch.inference_mode(), ctx:
            x = frame_inputs(backend, objects)
            calls = part_calls(backend, x)
            times = {name: cuda_ms(fn, iters, warmup) for name, fn in calls.items()}
        cfg = backend.config
        row = {"config": cfg.name, "image_size": cfg.image_size, "backend": label, "precision": precision,
               "objects": objects, "ms": {k: round(v, 3) for k, v in times.items()},
               "fps": round(1000.0 / times["frame"], 1)}
        target = TARGETS_MS.get((cfg.name, objects)) if cfg.image_size == 1024 else None
        if target is not None:
            row["target_ms"] = target
        rows.append(row)
        parts = " ".join(f"{k} {times[k]:.2f}" for k in PARTS)
        print(f"{cfg.name}@{cfg.image_size} {label:<14} {precision} B={objects}: {parts} | frame "
              f"{times['frame']:.2f} ms = {row['fps']} FPS" + (f" (target {target} ms)" if target else ""), flush=True)
    return rows


def environment() -> dict:
    env = {"gpu": torch.cuda.get_device_name(0), "capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
           "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
           "tf32_matmul": torch.backends.cuda.matmul.allow_tf32}
    try:
        import tensorrt

        env["tensorrt"] = tensorrt.__version__
    except ImportError:
        env["tensorrt"] = None
    return env


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["t", "s", "b+", "l"], help="t s b+ l or full config names")
    p.add_argument("--image-size", type=int, default=1024)
    p.add_argument("--objects", type=int, nargs="+", default=[1, 4, 8])
    p.add_argument("--backends", nargs="+", default=["torch", "tensorrt"], choices=["torch", "tensorrt"])
    p.add_argument("--precisions", nargs="+", default=["fp32", "fp16", "bf16"], choices=["fp32", "fp16", "bf16"])
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd submodules (slow first run)")
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--cache-dir", default=str(ROOT / "bench" / "out" / "gpu_cache"))
    p.add_argument("--json", default=str(ROOT / "bench" / "out" / "gpu.json"))
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("bench/gpu.py: no CUDA GPU is visible to torch; nothing to benchmark here "
              "(bench/onnx_cpu.py compares the CPU backends).")
        return 0
    from sam2_ros.backends.tensorrt_backend import tensorrt_unavailable

    env = environment()
    print(env, flush=True)
    trt_reason = tensorrt_unavailable("cuda")
    if "tensorrt" in args.backends and trt_reason:
        print(f"TensorRT skipped: {trt_reason}", flush=True)
    rows, errors = [], []
    for short in args.configs:
        config = SHORT.get(short, short)
        cases = [("torch", prec, False) for prec in args.precisions]
        if args.compile:
            cases += [("torch+compile", prec, True) for prec in args.precisions]
        if not trt_reason:
            cases += [("tensorrt", prec, False) for prec in args.precisions if "tensorrt" in args.backends]
        for label, precision, compiled in cases:
            if label.startswith("torch") and "torch" not in args.backends:
                continue
            start = time.perf_counter()
            try:
                if label == "tensorrt":
                    backend = tensorrt_backend(config, args.image_size, precision, max(args.objects),
                                               Path(args.cache_dir))
                else:
                    backend = torch_backend(config, args.image_size, compiled)
                rows += run_case(backend, label, precision, args.objects, args.iters, args.warmup,
                                 autocast=label.startswith("torch"))
            except Exception as err:  # one failing case must not lose the others
                traceback.print_exc()
                errors.append({"config": config, "backend": label, "precision": precision, "error": repr(err)})
            finally:
                backend = None
                torch.cuda.empty_cache()
            print(f"  ({label} {precision} took {time.perf_counter() - start:.0f} s incl. setup)", flush=True)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"env": env, "args": vars(args), "rows": rows, "errors": errors}, indent=1))
    print(f"wrote {out} ({len(rows)} rows, {len(errors)} errors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
