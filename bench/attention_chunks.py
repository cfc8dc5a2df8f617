"""Memory attention for several objects on CPU: one batched call against chunks of fewer objects.

Usage: .venv/bin/python bench/attention_chunks.py [--size 1024] [--objects 8] [--chunks 8 4 2 1] [--threads 2]
Random tiny-config weights and random memories shaped as the tracker builds them after 6 tracked frames (the prompted
frame + 6 past frames of spatial memory, 7 pointers split into 4 tokens each). Prints seconds per chunking and the
largest difference from the batched output (chunking must not change results).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sam2_ros.model import build_sam2  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--objects", type=int, default=8)
    p.add_argument("--chunks", type=int, nargs="+", default=[8, 4, 2, 1])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
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

    with torch.inference_mode():
        batched = run(n)
        print(f"size {args.size}, {n} objects, {args.threads} threads")
        for _ in range(args.repeats):
            for chunk in args.chunks:
                start = time.perf_counter()
                out = run(chunk)
                seconds = time.perf_counter() - start
                print(f"  chunks of {chunk}: {seconds:.3f} s  max |diff| {float((out - batched).abs().max()):.1e}",
                      flush=True)


if __name__ == "__main__":
    main()
