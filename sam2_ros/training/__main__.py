"""`python -m sam2_ros.training {train,finetune,evaluate,export}`: train the micro SAM 2 on synthetic clips,
fine-tune a real checkpoint's decoder on a folder of images + masks, measure tracking quality, export weights."""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields

import torch

from sam2_ros.model.checkpoint import read_state_dict
from sam2_ros.training.trainer import TrainConfig, Trainer, export_meta


def _add_train_args(p: argparse.ArgumentParser, defaults: TrainConfig) -> None:
    for f in fields(TrainConfig):
        value = getattr(defaults, f.name)
        kind = {int: int, float: float, str: str}.get(type(value), str)
        p.add_argument("--" + f.name.replace("_", "-"), type=kind, default=value, dest=f.name)
    p.add_argument("--no-resume", action="store_true", help="start over even if <out-dir>/last.pt exists")
    p.add_argument("--export", default=None, help="also write the final weights here ({'model': state_dict})")


def _config_from(args: argparse.Namespace) -> TrainConfig:
    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig)}
    for key in ("checkpoint", "images", "masks", "image_size"):
        if values[key] in ("", "None", None):
            values[key] = None
    if values["image_size"] is not None:
        values["image_size"] = int(values["image_size"])
    return TrainConfig(**values)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the training CLI."""
    parser = argparse.ArgumentParser(prog="python -m sam2_ros.training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train_args(sub.add_parser("train", help="train (resumes from <out-dir>/last.pt)"), TrainConfig())
    _add_train_args(sub.add_parser("finetune", help="train the decoder of a checkpoint on --images/--masks"),
                    TrainConfig(out_dir="runs/finetune", config="sam2.1_hiera_t", trainable="decoder", lr=1e-4,
                                warmup=20, steps=500, image_batch=4, eval_clips=0))
    ev = sub.add_parser("evaluate", help="tracking quality on held-out synthetic clips")
    ev.add_argument("--config", default="sam2_micro")
    ev.add_argument("--checkpoint", default="models/sam2_micro.pt")
    ev.add_argument("--clips", type=int, default=16)
    ev.add_argument("--frames", type=int, default=31)
    ev.add_argument("--prompt", choices=("click", "box"), default="click")
    ev.add_argument("--seed", type=int, default=None,
                    help="first clip's seed (default: the test clips, 1000000; validation clips start at 1500000)")
    ev.add_argument("--memory-stride", type=int, default=0, help="the tracker's memory stride (0: the config's)")
    ev.add_argument("--teacher-memory", action="store_true",
                    help="memories from the ground truth instead of the predictions (how much of the error is drift)")
    ex = sub.add_parser("export", help="write a run's weights in Meta's format")
    ex.add_argument("run", help="a run's last.pt")
    ex.add_argument("path")
    args = parser.parse_args(argv)

    if args.command in ("train", "finetune"):
        cfg = _config_from(args)
        if args.command == "finetune" and (cfg.images is None or cfg.masks is None):
            parser.error("finetune needs --images and --masks")
        given = {f.name for f in fields(TrainConfig)
                 if any(a == "--" + f.name.replace("_", "-") or a.startswith("--" + f.name.replace("_", "-") + "=")
                        for a in (argv if argv is not None else sys.argv[1:]))}
        trainer = Trainer(cfg, resume=not args.no_resume, overrides=given)
        state = trainer.train()
        print(f"done: step {state.step}, {state.seconds / 60:.1f} min; checkpoint {trainer.out / 'last.pt'}")
        if args.export:
            export_meta(trainer.model, args.export)
            print(f"exported {args.export}")
        return 0
    if args.command == "evaluate":
        from sam2_ros.model.build import build_sam2
        from sam2_ros.training.evaluate import measure

        torch.set_num_threads(1)  # one thread: several are far slower when other processes share the cores
        model = build_sam2(args.config, args.checkpoint)
        from sam2_ros.training.evaluate import EVAL_SEED_BASE

        seed = EVAL_SEED_BASE if args.seed is None else args.seed
        print(measure(model, args.clips, args.frames, seed=seed, prompt=args.prompt,
                      memory_stride=args.memory_stride, teacher_memory=args.teacher_memory).line())
        return 0
    torch.save({"model": read_state_dict(args.run)}, args.path)  # a run's last.pt keeps the weights under "model"
    print(f"exported {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
