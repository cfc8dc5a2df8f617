"""`make demo` / `python -m sam2_ros.demo [--detector | --depth]`: the sam2 node on a synthetic camera (see
sam2_ros/demo/__init__.py). Reads the arguments, finds a checkpoint, starts the node process, runs the mode, writes
the summary line to <out>/summary.txt and prints it."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from sam2_ros.demo.camera import CAMERA_TOPIC, CameraDemo
from sam2_ros.ros.client import use_private_domain
from sam2_ros.ros.node_process import SOURCE_ROOT, NodeProcess

MODELS = SOURCE_ROOT / "models"
# models/sam2_micro.pt ships with the repository (trained here, see models/MODEL_CARD.md); Meta's files can be added.
CHECKPOINT_NAMES = {"sam2_micro": "sam2_micro.pt", "sam2.1_hiera_t": "sam2.1_hiera_tiny.pt",
                    "sam2.1_hiera_s": "sam2.1_hiera_small.pt", "sam2.1_hiera_b+": "sam2.1_hiera_base_plus.pt",
                    "sam2.1_hiera_l": "sam2.1_hiera_large.pt", "edgetam": "edgetam.pt"}


def find_checkpoint(config: str) -> str | None:
    """$SAM2_CHECKPOINT, else models/<Meta's file name> in the checkout; None when there is none."""
    env = os.environ.get("SAM2_CHECKPOINT")
    if env:
        return env
    candidate = MODELS / CHECKPOINT_NAMES.get(config, f"{config}.pt")
    return str(candidate) if candidate.is_file() else None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sam2_ros.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--detector", action="store_true",
                      help="objects from a synthetic detector's vision_msgs boxes (with class names), not clicks")
    mode.add_argument("--depth", action="store_true",
                      help="RGB-D: also publish registered depth + camera_info; the node publishes 3-D outputs and "
                           "the summary adds each object's 3-D centroid error")
    parser.add_argument("--out", default=None, help="folder for overlay PNGs, summary.txt, node.log "
                        "(default demo_output; with --detector demo_output/detector, with --depth demo_output/depth)")
    parser.add_argument("--seconds", type=float, default=8.0, help="how long to track after the node first answers")
    parser.add_argument("--fps", type=float, default=None,
                        help="synthetic camera rate (default 15; with --detector on a CPU 5, see docs/BENCHMARKS.md)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--model-config", default="sam2_micro",
                        help="sam2_micro (shipped, trained here) or a Meta config with its checkpoint in models/")
    parser.add_argument("--image-size", type=int, default=None,
                        help="model input size (default: 256 for sam2_micro and on CPU; 1024 for Meta's models on a GPU)")
    parser.add_argument("--checkpoint", default=None,
                        help="Meta's .pt (default: models/<name>.pt if present; \"\" forces random weights)")
    parser.add_argument("--backend", default="auto", choices=("auto", "torch", "onnxruntime", "tensorrt"),
                        help="the node's backend (auto: ONNX Runtime on a CPU, exported once into the cache)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-frames", type=int, default=200, help="most overlay PNGs written")
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    return parser.parse_args(argv)


def mode_class(args: argparse.Namespace) -> type[CameraDemo]:
    """The demo mode's class (imported on demand: each mode is its own module)."""
    if args.detector:
        from sam2_ros.demo.detector import DetectorDemo
        return DetectorDemo
    if args.depth:
        from sam2_ros.demo.depth import DepthDemo
        return DepthDemo
    from sam2_ros.demo.clicks import ClickDemo
    return ClickDemo


def node_settings(args: argparse.Namespace, checkpoint: str | None, on_gpu: bool) -> tuple[dict, dict]:
    """(parameters, remaps) of the node process for this mode."""
    params = {"model_config": args.model_config, "image_size": args.image_size, "prompt_history": 30,
              "image_reliability": "reliable", "backend": args.backend,
              # On a CPU shared with other work one torch thread is several times faster than two that spin
              # against each other (measured: 0.5 s vs 5 s per frame at 256 px under load).
              "cpu_threads": 0 if on_gpu else 1}
    remaps = {"image": CAMERA_TOPIC}
    if checkpoint:
        params["checkpoint"] = checkpoint
    if args.depth:
        from sam2_ros.demo.depth import DEPTH_TOPIC, INFO_TOPIC
        params["use_depth"] = True
        remaps.update({"depth": DEPTH_TOPIC, "camera_info": INFO_TOPIC})
    if args.detector:
        from sam2_ros.demo.detector import DETECTIONS_TOPIC
        remaps["~/detections"] = DETECTIONS_TOPIC
    return params, remaps


def _banner(lines: list[str]) -> None:
    bar = "!" * 78
    print("\n".join([bar] + [f"!! {line}" for line in lines] + [bar]), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when the node tracked, exited cleanly and the summary was written."""
    args = parse_args(argv)
    import torch

    on_gpu = torch.cuda.is_available()
    if args.fps is None:
        # The micro model on a CPU sees every 3rd frame of a 15 Hz camera; shapes then move so far between the
        # frames it gets that it loses some, and the detector's boxes of a lost shape make a new object.
        args.fps = 5.0 if args.detector and not on_gpu else 15.0
    if args.image_size is None:
        args.image_size = 1024 if on_gpu and args.model_config != "sam2_micro" else 256
    out = Path(args.out or ("demo_output/detector" if args.detector else
                            "demo_output/depth" if args.depth else "demo_output")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("overlay_*.png"):
        old.unlink()
    checkpoint = (args.checkpoint if args.checkpoint is not None else find_checkpoint(args.model_config)) or None
    if checkpoint is None:
        _banner(["NO CHECKPOINT FOUND: the model runs with RANDOM WEIGHTS.",
                 "The pipeline works end to end, but the masks are meaningless and J is near chance.",
                 f"Put Meta's {CHECKPOINT_NAMES.get(args.model_config, args.model_config + '.pt')} into "
                 f"{MODELS} or pass --checkpoint / set SAM2_CHECKPOINT."])
    use_private_domain()  # shared only with our own node process
    params, remaps = node_settings(args, checkpoint, on_gpu)
    print(f"starting the sam2 node ({args.model_config} at {args.image_size} px); log: {out / 'node.log'}",
          flush=True)
    t0 = time.monotonic()
    proc = NodeProcess(out / "node.log", params=params, remaps=remaps)
    try:
        demo = mode_class(args)(args, out, proc)
        code = demo.run()
    finally:
        node_code = proc.stop(timeout=30)
    line = demo.summary("random" if checkpoint is None else checkpoint)
    (out / "summary.txt").write_text(line + "\n")
    print(line, flush=True)
    print(f"demo finished in {time.monotonic() - t0:.1f} s; node exit code {node_code}; results in {out}", flush=True)
    if checkpoint is None:
        _banner(["Reminder: RANDOM WEIGHTS were used (no checkpoint); the masks above are not segmentation."])
    return code if code else (0 if demo.outputs and node_code == 0 else 1)


if __name__ == "__main__":
    sys.exit(main())
