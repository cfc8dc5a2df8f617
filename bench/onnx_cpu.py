"""ONNX Runtime vs torch on CPU, per inference part, on the same inputs in the same process.

    .venv/bin/python bench/onnx_cpu.py [--config sam2.1_hiera_t] [--sizes 1024 512] [--runs 3] [--threads 2]
                                       [--json bench/out/onnx_cpu.json]

Exports the four parts (one graph variant each) to a temporary directory, then times each part (median of --runs
after one warm-up) in torch and in an ONNX Runtime CPU session with the same thread count. One object, one point,
a full memory bank (7 memory frames, 16 pointers = 64 tokens). Prints a markdown table for docs/BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sam2_ros.export.onnx_export import export_parts  # noqa: E402
from sam2_ros.export.parts import PART_SPECS, PartModule, example_inputs  # noqa: E402
from sam2_ros.model import build_sam2  # noqa: E402

GRAPHS = {"encode_image": "image encoder", "decode_multimask": "prompt enc + mask decoder (1 point, multimask)",
          "attend_memory": "memory attention (7 memories, 64 pointer tokens)", "encode_memory": "memory encoder"}


def median_time(fn, runs: int) -> float:
    """Median wall seconds of fn() over `runs` calls after one warm-up."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(config: str, size: int, runs: int, threads: int) -> list[dict]:
    import onnxruntime as ort

    model = build_sam2(config, image_size=size)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        export_parts(model, tmp, parts=list(GRAPHS), progress=lambda line: print("  export " + line, flush=True))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        for graph, label in GRAPHS.items():
            spec = PART_SPECS[graph]
            session = ort.InferenceSession(str(Path(tmp) / spec.filename), opts, providers=["CPUExecutionProvider"])
            inputs = example_inputs(model, spec, objects=1, points=1, memory_frames=model.config.num_maskmem,
                                    pointers=16 * model.config.hidden_dim // model.config.mem_dim)
            feed = {n: t.numpy() for n, t in zip(spec.inputs, inputs)}
            module = PartModule(model, spec).eval()
            reps = runs * (5 if spec.part in ("decode", "encode_memory") else 1)
            with torch.inference_mode():
                t_torch = median_time(lambda: module(*inputs), reps)
            t_ort = median_time(lambda: session.run(None, feed), reps)
            rows.append({"config": config, "image_size": size, "part": label, "torch_s": t_torch,
                         "onnxruntime_s": t_ort})
            print(f"  {config}@{size} {label}: torch {t_torch:.3f} s, onnxruntime {t_ort:.3f} s", flush=True)
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="sam2.1_hiera_t")
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 512])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=str(ROOT / "bench" / "out" / "onnx_cpu.json"))
    args = p.parse_args()
    import onnxruntime as ort

    torch.set_num_threads(args.threads)
    rows = [row for size in args.sizes for row in bench(args.config, size, args.runs, args.threads)]
    env = {"cpu": platform.processor() or platform.machine(), "threads": args.threads, "torch": torch.__version__,
           "onnxruntime": ort.__version__, "python": platform.python_version()}
    print(f"\n{env}\n")
    print("| config @ size | part | torch (s) | ONNX Runtime (s) | speed-up |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} @ {r['image_size']} | {r['part']} | {r['torch_s']:.3f} | {r['onnxruntime_s']:.3f} | "
              f"{r['torch_s'] / r['onnxruntime_s']:.2f}x |")
    for size in args.sizes:
        sel = [r for r in rows if r["image_size"] == size]
        print(f"| {args.config} @ {size} | **tracked frame, 1 object** | {sum(r['torch_s'] for r in sel):.3f} | "
              f"{sum(r['onnxruntime_s'] for r in sel):.3f} | "
              f"{sum(r['torch_s'] for r in sel) / sum(r['onnxruntime_s'] for r in sel):.2f}x |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"env": env, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
