"""The four model parts on CPU, ours (torch) against Meta's reference code or against ONNX Runtime, on the same inputs
in the same process.

    .venv/bin/python -m bench.parts_cpu --against reference|onnxruntime [--config sam2.1_hiera_t] [--sizes 1024 512]
        [--runs 3] [--threads 2] [--quick]

One loop for both: per part, ours and the other called alternately (median of --runs after one warm-up each, decoder
x5 and memory encoder x3 runs), so load from other processes hits both alike. One object, one point, a full memory
bank (7 memory frames, 16 pointers = 64 pointer tokens).
- reference: `Sam2Model` with the reference's weights (PyPI `sam2`, the test oracle test/oracle.py; seeded random,
  loaded strictly) vs the reference's own methods; ours includes the tracker's memory selection and assembly
  (`MemoryAssembler`) where the reference's `_prepare_memory_conditioned_features` does the same.
- onnxruntime: the parts exported to ONNX (one graph each, a temporary folder) in an ONNX Runtime CPU session with the
  same thread count vs the torch wrappers that were exported (`PartModule`); random weights.
Writes bench/out/parts_cpu_<against>.json and .md.
"""
from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from bench.common import Report, description, load_test_module, paired, parse_args, stats
from sam2_ros.model import Sam2Model, build_sam2, get_config

PARTS = {  # label -> runs factor
    "image encoder": 1, "prompt enc + mask decoder (1 point, multimask)": 5,
    "memory attention (7 memories, 16 pointers = 64 tokens)": 1, "memory encoder": 3}
Pair = tuple[Callable[[], object], Callable[[], object]]  # (ours, the other)


def against_reference(config: str, size: int, threads: int, tmp: str) -> list[Pair]:
    """Ours and Meta's call of each part (PARTS order), same weights and inputs."""
    from sam2_ros.tracking.memory_bank import MemoryAssembler, select_memory
    from sam2_ros.tracking.state import Memory, ObjectState

    ref = load_test_module("oracle").build_reference(config, image_size=size)
    ours = Sam2Model(get_config(config, size)).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    c, d, h = ours.config.hidden_dim, ours.config.mem_dim, ours.config.feat_size
    torch.manual_seed(0)
    image = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        s0, s1, embed, pos = ours.encode_image(image)
    point, label = torch.tensor([[[size / 3, size / 2]]]), torch.ones(1, 1, dtype=torch.int32)
    # A full memory bank: 1 prompted frame + 6 previous frames, pointers of 1 prompted + 15 previous frames.
    frames = {t: {"maskmem_features": torch.randn(1, d, h, h), "maskmem_pos_enc": [torch.randn(1, d, h, h)],
                  "obj_ptr": torch.randn(1, c)} for t in range(0, 31)}
    output_dict = {"cond_frame_outputs": {0: frames[0]}, "non_cond_frame_outputs": {t: frames[t] for t in range(1, 31)}}
    curr_tokens, pos_tokens = embed.flatten(2).permute(2, 0, 1), pos.flatten(2).permute(2, 0, 1)
    memory = {t: Memory(f["obj_ptr"], torch.zeros(1, 1), f["maskmem_features"], None, None) for t, f in frames.items()}
    bank = ObjectState(1, cond={0: memory[0]}, recent={t: memory[t] for t in range(1, 31)})
    assembler = MemoryAssembler(ours)  # the tracker's selection and assembly over the same memories
    assembler.set_maskmem_pos(frames[0]["maskmem_pos_enc"][0])
    masks, score = torch.randn(1, 1, size, size), torch.ones(1, 1)
    return [
        (lambda: ours.encode_image(image), lambda: ref._prepare_backbone_features(ref.forward_image(image))),
        (lambda: ours.decode(embed, s0, s1, point, label, None, True),
         lambda: ref._forward_sam_heads(embed, {"point_coords": point, "point_labels": label}, None, [s0, s1], True)),
        (lambda: ours.attend_memory(embed, pos, *assembler.assemble(select_memory(bank, 31, ours.config).rows(1))),
         lambda: ref._prepare_memory_conditioned_features(31, False, [curr_tokens], [pos_tokens], [(h, h)],
                                                          output_dict, 1000)),
        (lambda: ours.encode_memory(embed, masks, score, False),
         lambda: ref._encode_new_memory([curr_tokens], [(h, h)], masks, score, False))]


def against_onnxruntime(config: str, size: int, threads: int, tmp: str) -> list[Pair]:
    """The exported torch wrapper and its ONNX Runtime session of each part (PARTS order), same inputs."""
    import onnxruntime as ort

    from sam2_ros.export.onnx_export import export_parts
    from sam2_ros.export.parts import PART_SPECS, PartModule, example_inputs

    graphs = ("encode_image", "decode_multimask", "attend_memory", "encode_memory")
    model = build_sam2(config, image_size=size)
    export_parts(model, tmp, parts=list(graphs), progress=lambda line: print("  export " + line, flush=True))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    pairs = []
    for graph in graphs:
        spec = PART_SPECS[graph]
        session = ort.InferenceSession(str(Path(tmp) / spec.filename), opts, providers=["CPUExecutionProvider"])
        inputs = example_inputs(model, spec, objects=1, points=1, memory_frames=model.config.num_maskmem,
                                pointers=16 * model.config.hidden_dim // model.config.mem_dim)
        feed = {n: t.numpy() for n, t in zip(spec.inputs, inputs)}
        module = PartModule(model, spec).eval()
        pairs.append((lambda m=module, x=inputs: m(*x), lambda s=session, f=feed: s.run(None, f)))
    return pairs


AGAINST = {"reference": against_reference, "onnxruntime": against_onnxruntime}


def main() -> None:
    parser = argparse.ArgumentParser(**description(__doc__))
    parser.add_argument("--against", choices=sorted(AGAINST), required=True)
    parser.add_argument("--config", default="sam2.1_hiera_t")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 512])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parse_args(parser, quick={"sizes": [256], "runs": 1})
    torch.set_num_threads(args.threads)
    rep = Report(f"parts_cpu_{args.against}", f"Model parts on CPU: ours (torch) vs {args.against}")
    rep.print(f"{args.config}, {args.threads} threads, median of {args.runs} alternating runs after a warm-up "
              f"(decoder x5, memory encoder x3)", "")
    rep.table("config @ size", "part", "ours (s)", f"{args.against} (s)", f"ours / {args.against}")
    rows = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            pairs = AGAINST[args.against](args.config, size, args.threads, tmp)
            for (label, factor), (ours, other) in zip(PARTS.items(), pairs):
                with torch.inference_mode():
                    t_ours, t_other = (stats(t)["median"] for t in paired(ours, other, args.runs * factor))
                rows.append({"config": args.config, "image_size": size, "part": label, "ours_s": t_ours,
                             f"{args.against}_s": t_other})
                rep.row(f"{args.config} @ {size}", label, f"{t_ours:.4f}", f"{t_other:.4f}", f"{t_ours / t_other:.2f}")
        sel = [r for r in rows if r["image_size"] == size]
        total_ours, total_other = sum(r["ours_s"] for r in sel), sum(r[f"{args.against}_s"] for r in sel)
        rep.row(f"{args.config} @ {size}", "**tracked frame, 1 object (sum)**", f"{total_ours:.4f}",
                f"{total_other:.4f}", f"{total_ours / total_other:.2f}")
    rep.data.update(args=vars(args), rows=rows)
    rep.write()


if __name__ == "__main__":
    main()
