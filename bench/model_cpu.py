"""Time the four model parts, ours vs Meta's reference code, on the same inputs in the same process.

    .venv/bin/python bench/model_cpu.py [--config sam2.1_hiera_t] [--sizes 1024 512] [--runs 3] [--threads 2]

Prints a markdown table (median seconds of `--runs` alternating ours/reference runs after one warm-up each;
decoder x5 and memory encoder x3 runs) for docs/BENCHMARKS.md.
The reference (PyPI `sam2`, test oracle) is only used here for comparison.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "test")]

from oracle import build_reference  # noqa: E402
from sam2_ros.model import Sam2Model, get_config  # noqa: E402
from sam2_ros.tracking.memory_bank import MemoryAssembler, select_memory  # noqa: E402
from sam2_ros.tracking.state import Memory, ObjectState  # noqa: E402


def _paired_medians(fn_ours, fn_ref, runs: int) -> tuple[float, float]:
    """Median wall times of fn_ours() and fn_ref(), called alternately `runs` times each after one warm-up each,
    so load from other processes hits both alike."""
    fn_ours(), fn_ref()
    ours, ref = [], []
    for _ in range(runs):
        for fn, times in ((fn_ours, ours), (fn_ref, ref)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(ours), statistics.median(ref)


def _memory(frame: dict) -> Memory:
    """One of Meta's per-frame outputs ([1, ...] tensors) as a memory-bank entry."""
    return Memory(frame["obj_ptr"], torch.zeros(1, 1), frame["maskmem_features"], None, None)


def _as_map(tokens: torch.Tensor, h: int) -> torch.Tensor:
    return tokens.permute(1, 2, 0).reshape(tokens.shape[1], tokens.shape[2], h, h)


def bench(config: str, size: int, runs: int) -> list[tuple[str, float, float]]:
    """[(part, ours seconds, reference seconds)] for one config and image size."""
    ref = build_reference(config, image_size=size)
    ours = Sam2Model(get_config(config, size)).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    cfg = ours.config
    c, d, h = cfg.hidden_dim, cfg.mem_dim, cfg.feat_size
    torch.manual_seed(0)
    image = torch.randn(1, 3, size, size)
    rows = []
    with torch.inference_mode():
        rows.append(("image encoder", *_paired_medians(
            lambda: ours.encode_image(image), lambda: ref._prepare_backbone_features(ref.forward_image(image)), runs)))
        s0, s1, embed, pos = ours.encode_image(image)
        point, label = torch.tensor([[[size / 3, size / 2]]]), torch.ones(1, 1, dtype=torch.int32)
        rows.append(("prompt enc + mask decoder (1 point, multimask)", *_paired_medians(
            lambda: ours.decode(embed, s0, s1, point, label, None, True),
            lambda: ref._forward_sam_heads(embed, {"point_coords": point, "point_labels": label}, None, [s0, s1],
                                           True), runs * 5)))
        # A full memory bank: 1 prompted frame + 6 previous frames, pointers of 1 prompted + 15 previous frames.
        frames = {t: {"maskmem_features": torch.randn(1, d, h, h), "maskmem_pos_enc": [torch.randn(1, d, h, h)],
                      "obj_ptr": torch.randn(1, c)} for t in range(0, 31)}
        output_dict = {"cond_frame_outputs": {0: frames[0]},
                       "non_cond_frame_outputs": {t: frames[t] for t in range(1, 31)}}
        curr_tokens, pos_tokens = embed.flatten(2).permute(2, 0, 1), pos.flatten(2).permute(2, 0, 1)
        # The tracker's selection and assembly over the same memories (one sine position map for every frame).
        bank = ObjectState(1, cond={0: _memory(frames[0])}, recent={t: _memory(frames[t]) for t in range(1, 31)})
        assembler = MemoryAssembler(ours)
        assembler.set_maskmem_pos(frames[0]["maskmem_pos_enc"][0])

        def ours_memory():
            parts = assembler.assemble(select_memory(bank, 31, ours.config).rows(1))
            return ours.attend_memory(embed, pos, *parts)

        rows.append(("memory attention (7 memories, 16 pointers)", *_paired_medians(
            ours_memory, lambda: ref._prepare_memory_conditioned_features(
                31, False, [curr_tokens], [pos_tokens], [(h, h)], output_dict, 1000), runs)))
        masks = torch.randn(1, 1, size, size)
        score = torch.ones(1, 1)
        rows.append(("memory encoder", *_paired_medians(
            lambda: ours.encode_memory(embed, masks, score, False),
            lambda: ref._encode_new_memory([curr_tokens], [(h, h)], masks, score, False), runs * 3)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="sam2.1_hiera_t")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 512])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d')}")
    print("| config | size | part | ours (s) | reference (s) | ours / ref |\n|---|---|---|---|---|---|")
    for size in args.sizes:
        for part, t_ours, t_ref in bench(args.config, size, args.runs):
            print(f"| {args.config} | {size} | {part} | {t_ours:.4f} | {t_ref:.4f} | {t_ours / t_ref:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
