"""CLI: python -m sam2_ros.export --config sam2.1_hiera_t --checkpoint PATH --out DIR [--image-size N] [--opset N]
[--precision fp32|fp16|bf16]."""
from __future__ import annotations

import argparse
import logging
import sys
import time

from sam2_ros.export.onnx_export import DEFAULT_OPSET, export_parts
from sam2_ros.export.parts import PART_SPECS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from sam2_ros.model.config import CONFIGS

    p = argparse.ArgumentParser(prog="python -m sam2_ros.export",
                                description="Export SAM 2's inference parts to ONNX (+ metadata.json).")
    p.add_argument("--config", default="sam2.1_hiera_t", choices=list(CONFIGS), help="model config name")
    p.add_argument("--checkpoint", default=None,
                   help="Meta's .pt checkpoint for the config (omit only for tests: random weights)")
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--image-size", type=int, default=None, help="model input side (default: the config's, 1024)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (>= 17, default {DEFAULT_OPSET})")
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"),
                   help="fp16/bf16: strongly typed mixed-precision graphs (half weights and matmuls/convolutions, "
                        "LayerNorm, softmax, sigmoid, position tables and reductions fp32), what TensorRT 11 and "
                        ">= 10.12 build; default fp32")
    p.add_argument("--parts", nargs="+", default=None, choices=list(PART_SPECS), metavar="PART",
                   help=f"graphs to export (default: all of {', '.join(PART_SPECS)})")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build the model, export the parts, print a line per part; exit code 2 on a bad argument or checkpoint."""
    args = parse_args(argv)
    from sam2_ros.model.build import build_sam2
    from sam2_ros.model.checkpoint import weights_hash

    try:
        model = build_sam2(args.config, checkpoint=args.checkpoint, image_size=args.image_size, device="cpu")
        digest = weights_hash(args.checkpoint) if args.checkpoint else None
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"exporting {args.config} at {model.config.image_size}px to {args.out} (opset {args.opset}, "
          f"{args.precision})", flush=True)
    start = time.perf_counter()
    try:
        meta = export_parts(model, args.out, weights_hash=digest, parts=args.parts, opset=args.opset,
                            progress=lambda line: print(line, flush=True), precision=args.precision)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"done: {len(meta['parts'])} graphs + metadata.json in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
