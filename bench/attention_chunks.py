"""Memory attention for several objects on CPU: one batched call against chunks of fewer objects.

    .venv/bin/python -m bench.attention_chunks [--size 1024] [--objects 8] [--chunks 8 4 2 1] [--threads 2] [--quick]

Random tiny-config weights and random memories shaped as the tracker builds them after 6 tracked frames (the prompted
frame + 6 past frames of spatial memory, 7 pointers split into 4 tokens each). Seconds per chunking and the largest
difference from the batched output (chunking must not change results). Writes bench/out/attention_chunks.json, .md.
"""
from __future__ import annotations

import argparse
import time

import torch

from bench.common import Report, description, parse_args
from sam2_ros.model import build_sam2


def main() -> None:
    p = argparse.ArgumentParser(**description(__doc__))
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--objects", type=int, default=8)
    p.add_argument("--chunks", type=int, nargs="+", default=[8, 4, 2, 1])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    args = parse_args(p, quick={"size": 256, "objects": 2, "chunks": [2, 1], "repeats": 1})
    torch.set_num_threads(args.threads)
    model = build_sam2("sam2.1_hiera_t").eval()
    n, h = args.objects, args.size // 16
    c, d = model.config.hidden_dim, model.config.mem_dim
    torch.manual_seed(0)
    curr = torch.randn(n, c, h, h)  # [N, C, h, w] frame embedding, once per object
    pos = torch.randn(1, c, h, h).expand(n, -1, -1, -1)
    memory, memory_pos = torch.randn(n, 7 * h * h, d), torch.randn(n, 7 * h * h, d)  # [N, 7*h*w, D]
    ptrs, ptr_pos = torch.randn(n, 7 * (c // d), d), torch.randn(n, 7 * (c // d), d)  # [N, 7*C/D, D]

    def run(chunk: int) -> torch.Tensor:
        return torch.cat([model.attend_memory(curr[i:i + chunk], pos[i:i + chunk], memory[i:i + chunk],
                                              memory_pos[i:i + chunk], ptrs[i:i + chunk], ptr_pos[i:i + chunk])
                          for i in range(0, n, chunk)])

    rep = Report("attention_chunks", "Memory attention: one batched call vs chunks of objects")
    rep.print(f"size {args.size}, {n} objects, {args.threads} threads", "")
    rep.table("chunk of objects", "seconds", "max abs difference from batched")
    rows = []
    with torch.inference_mode():
        batched = run(n)
        for _ in range(args.repeats):
            for chunk in args.chunks:
                start = time.perf_counter()
                out = run(chunk)
                rows.append({"chunk": chunk, "seconds": time.perf_counter() - start,
                             "max_abs_diff": float((out - batched).abs().max())})
                rep.row(chunk, f"{rows[-1]['seconds']:.3f}", f"{rows[-1]['max_abs_diff']:.1e}")
    rep.data.update(args=vars(args), rows=rows)
    rep.write()


if __name__ == "__main__":
    main()
