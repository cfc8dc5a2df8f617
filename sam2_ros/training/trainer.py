"""Trainer: AdamW with warm-up and cosine decay over mixed single-frame and clip batches, seeded and resumable from
its own checkpoint (`<out>/last.pt`), exporting Meta's checkpoint format (`{"model": state_dict}`)."""
from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from sam2_ros.model.build import build_sam2
from sam2_ros.model.checkpoint import read_safely
from sam2_ros.model.config import get_config
from sam2_ros.model.sam2 import Sam2Model
from sam2_ros.training.batches import Batch, FolderSource, prefetch, scene_batch, synthetic_batch
from sam2_ros.training.losses import LossWeights
from sam2_ros.training.unroll import unroll

DECODER_PREFIXES = ("sam_mask_decoder.", "sam_prompt_encoder.")  # what "--trainable decoder" trains


@dataclass
class TrainConfig:
    """Everything a run depends on (saved in its checkpoint; a resumed run keeps the saved values)."""

    out_dir: str = "runs/micro"
    config: str = "sam2_micro"
    checkpoint: str | None = None  # initial weights (Meta's format); None = random
    image_size: int | None = None  # None: the config's
    steps: int = 10000
    minutes: float = 0.0  # stop after this long (0: no limit); the schedule still follows `steps`
    lr: float = 5e-4
    min_lr_ratio: float = 0.05
    warmup: int = 200
    restart: int = 0  # step where the schedule (warm-up + cosine to `steps`) starts over: a warm restart
    weight_decay: float = 0.05
    clip_grad: float = 1.0
    seed: int = 0
    image_batch: int = 8  # images per single-frame batch
    clip_batch: int = 2  # clips per clip batch
    clip_frames: int = 5
    objects: int = 3  # prompted objects per image / clip (the decoder is cheap; the encoder runs once)
    clip_fraction: float = 0.5  # share of steps that are clip batches
    occluder_fraction: float = -1.0  # share of clips where a crossing object hides a target (<0: the generator's 30 %)
    max_speed: float = 1.0  # clip motion sped up by a factor in [1, max_speed] (whole occlusions fit short clips)
    scene_fraction: float = 0.0  # share of clip batches from the demo's camera (sam2_ros.sim) instead
    clip_encoder_grad: int = 1  # 0: clip batches train memory + decoder only (image batches still train the
    #                             encoder); its backward is ~half of a long clip's step
    correct_fraction: float = 0.3  # share of steps with a corrective click on the prompted frame
    box_fraction: float = 0.3
    multi_click_fraction: float = 0.15
    trainable: str = "all"  # "all" or "decoder" (prompt encoder + mask decoder only)
    images: str | None = None  # a folder of images (fine-tuning); None = synthetic clips
    masks: str | None = None
    save_every_s: float = 300.0
    log_every: int = 10
    eval_clips: int = 4  # held-out clips tracked at every save (0: none)
    threads: int = 1  # 1 is much faster than 2 when other processes share the cores (no OpenMP spin-waits)


@dataclass
class TrainState:
    step: int = 0
    seconds: float = 0.0  # training wall time summed over sessions
    best: float = -1.0  # best held-out score (J prompted + J tracked) / 2
    history: list[dict] = field(default_factory=list)  # logged averages


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to cfg.lr, then cosine decay to cfg.lr * min_lr_ratio at cfg.steps (both from cfg.restart)."""
    step -= cfg.restart
    if step < cfg.warmup:
        return cfg.lr * (max(step, 0) + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.restart - cfg.warmup))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def export_meta(model: Sam2Model, path: str | os.PathLike) -> None:
    """Write the weights in Meta's checkpoint format, {"model": state_dict}, float32."""
    state = {k: v.detach().float().cpu().clone() for k, v in model.state_dict().items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state}, path)


class Trainer:
    """Owns the model, optimiser, data stream and checkpoints of one run."""

    def __init__(self, cfg: TrainConfig, resume: bool = True, log: Callable[[str], None] | None = None,
                 overrides: set[str] | None = None) -> None:
        self.out = Path(cfg.out_dir)
        self.log = log or (lambda line: print(line, flush=True))
        last = self.out / "last.pt"
        saved = read_safely(last) if resume and last.exists() else None
        if saved is not None:
            # The saved settings win, except these and the `overrides` (the CLI passes the options given explicitly;
            # image_size too: train small first, then at full size - the weights fit both).
            keep = {"steps", "minutes", "save_every_s", "log_every", "threads", "eval_clips", "image_size"}
            merged = {**saved["train_config"], **{k: getattr(cfg, k) for k in keep | set(overrides or ())}}
            cfg = TrainConfig(**merged)
        self.cfg = cfg
        torch.manual_seed(cfg.seed)
        if saved is None and cfg.checkpoint is not None:
            self.model = build_sam2(cfg.config, cfg.checkpoint, cfg.image_size).train()
        else:  # random initial weights, or the run's own (loaded below): no "random weights" warning
            self.model = Sam2Model(get_config(cfg.config, cfg.image_size)).train()
        self.size = self.model.config.image_size
        params = [p for n, p in self.model.named_parameters()
                  if cfg.trainable == "all" or n.startswith(DECODER_PREFIXES)]
        if cfg.trainable not in ("all", "decoder"):
            raise ValueError(f"trainable must be 'all' or 'decoder', got {cfg.trainable!r}")
        for n, p in self.model.named_parameters():
            p.requires_grad_(cfg.trainable == "all" or n.startswith(DECODER_PREFIXES))
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.state = TrainState()
        self.folder = FolderSource(cfg.images, cfg.masks, self.size) if cfg.images else None
        if saved is not None:
            self.model.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            self.state = TrainState(**saved["state"])
            if "torch_rng" in saved:  # dropout draws continue where they stopped
                torch.set_rng_state(saved["torch_rng"])
            self.log(f"resumed {last} at step {self.state.step} ({self.state.seconds / 60:.1f} min trained)")

    # ------------------------------------------------------------------ data and one step
    def _plan(self, i: int) -> dict:
        """What batch i is: clip or image batch, prompt kind, correction (a pure function of seed and i)."""
        r = random.Random(self.cfg.seed * 1_000_003 + i)
        u = r.random()
        kind, clicks = ("box", 2) if u < self.cfg.box_fraction else (
            ("click", r.randint(2, 3)) if u < self.cfg.box_fraction + self.cfg.multi_click_fraction else ("click", 1))
        clip = self.folder is None and r.random() < self.cfg.clip_fraction
        correct = r.random() < self.cfg.correct_fraction
        scene = clip and r.random() < self.cfg.scene_fraction  # drawn last: earlier draws stay as they were
        return dict(clip=clip, kind=kind, clicks=clicks, correct=correct, scene=scene)

    def make_batch(self, i: int) -> Batch:
        """Batch i of this run (rendered in the background thread)."""
        plan = self._plan(i)
        rng = np.random.default_rng([self.cfg.seed, i])
        if self.folder is not None:
            return self.folder.batch(rng, self.cfg.image_batch)
        if plan["scene"]:
            return scene_batch(rng, self.cfg.clip_batch, self.cfg.clip_frames, self.cfg.objects, self.size)
        if plan["clip"]:
            occluders = self.cfg.occluder_fraction if self.cfg.occluder_fraction >= 0 else None
            return synthetic_batch(rng, self.cfg.clip_batch, self.cfg.clip_frames, self.cfg.objects, self.size,
                                   occluders, self.cfg.max_speed)
        return synthetic_batch(rng, self.cfg.image_batch, 1, self.cfg.objects, self.size)

    @torch.no_grad()
    def loss_on(self, batch: Batch, seed: int = 0) -> float:
        """Total loss of a batch as a single-click single-frame batch, without training (for before/after checks)."""
        was_training = self.model.training
        self.model.eval()
        images, targets = batch.tensors()
        out = unroll(self.model, images, targets, torch.Generator().manual_seed(seed), "click", 1, False)
        self.model.train(was_training)
        return float(out.total)

    def step(self, i: int, batch: Batch) -> dict[str, float]:
        """One optimiser step on batch i; returns the logged loss terms."""
        plan = self._plan(i)
        images, targets = batch.tensors()
        gen = torch.Generator().manual_seed(self.cfg.seed * 7919 + i)
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(i, self.cfg)
        out = unroll(self.model, images, targets, gen, plan["kind"], plan["clicks"], plan["correct"],
                     LossWeights(), trainable_encoder=self.cfg.trainable == "all"
                     and (not plan["clip"] or bool(self.cfg.clip_encoder_grad)))
        self.optimizer.zero_grad(set_to_none=True)
        out.total.backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.clip_grad)
        self.optimizer.step()
        logged = out.summary()
        logged["grad_norm"] = float(grad_norm)
        logged["clip"] = float(plan["clip"])
        return logged

    # ------------------------------------------------------------------ the loop
    def train(self) -> TrainState:
        """Run until cfg.steps (or cfg.minutes); checkpoints every cfg.save_every_s and at the end."""
        torch.set_num_threads(self.cfg.threads)
        cfg, state = self.cfg, self.state
        start = time.monotonic()
        last_save = start
        seconds0 = state.seconds
        window: list[dict] = []
        stream = prefetch(self.make_batch, state.step)
        try:
            for i, batch in stream:
                if i >= cfg.steps or (cfg.minutes and time.monotonic() - start > cfg.minutes * 60):
                    break
                window.append(self.step(i, batch))
                state.step = i + 1
                state.seconds = seconds0 + time.monotonic() - start
                if state.step % cfg.log_every == 0 or state.step == cfg.steps:
                    self._log_progress(window)
                    window = []
                if time.monotonic() - last_save > cfg.save_every_s:
                    self.save()
                    last_save = time.monotonic()
        finally:
            stream.close()
        self.save()
        return state

    def _log_progress(self, window: list[dict]) -> None:
        cfg, state = self.cfg, self.state
        avg = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
        avg.update(step=state.step, minutes=state.seconds / 60, lr=lr_at(state.step, cfg))
        state.history.append(avg)
        done = state.step / cfg.steps
        bar = "#" * int(20 * done) + "." * (20 - int(20 * done))
        rate = state.seconds / max(state.step, 1)
        self.log(f"[{bar}] {state.step}/{cfg.steps} {state.seconds / 60:.1f} min ({rate:.2f} s/step)  "
                 f"loss {avg['total']:.3f} focal {avg['focal']:.4f} dice {avg['dice']:.3f} iou {avg['iou']:.3f} "
                 f"score {avg['score']:.3f} train-IoU {avg['best_iou']:.3f} lr {avg['lr']:.2e}")

    def save(self) -> None:
        """Write <out>/last.pt (resumable), and at a new best held-out score also <out>/best.pt (Meta's format)."""
        self.out.mkdir(parents=True, exist_ok=True)
        if self.cfg.eval_clips and self.folder is None:
            from sam2_ros.training.evaluate import VALIDATION_SEED_BASE, measure

            quality = measure(self.model, clips=self.cfg.eval_clips, frames=16, seed=VALIDATION_SEED_BASE)
            self.model.train()
            score = (quality.j_prompted + quality.j_tracked) / 2
            self.state.history.append({"step": self.state.step, "eval": quality.line()})
            self.log(f"  held-out @ step {self.state.step}: {quality.line()}")
            if score > self.state.best:
                self.state.best = score
                export_meta(self.model, self.out / "best.pt")
        tmp = self.out / "last.pt.tmp"
        torch.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "state": asdict(self.state), "train_config": asdict(self.cfg),
                    "torch_rng": torch.get_rng_state()}, tmp)
        os.replace(tmp, self.out / "last.pt")
