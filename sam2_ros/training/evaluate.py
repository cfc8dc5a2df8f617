"""Tracking quality of a model on held-out synthetic clips, measured through the real StreamingTracker: region IoU
(J) on the prompted frame and over the tracked frames (an occlusion in the middle), and how well the predicted IoU
follows the true IoU (Pearson correlation)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from sam2_ros.model.sam2 import Sam2Model, postprocess_masks
from sam2_ros.sim import inner_point, jaccard
from sam2_ros.training.data import Clip, make_eval_clip

EVAL_SEED_BASE = 1_000_000  # test clips (the quality test) use seeds from here on; training never does
VALIDATION_SEED_BASE = 1_500_000  # clips that pick a run's best weights: never the test clips


def pearson(a: list[float], b: list[float]) -> float:
    """Pearson correlation of two equally long sequences (0 when either is constant)."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.size < 2 or x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


@dataclass
class Quality:
    """Measured figures over a set of clips (J of the prompted frame, mean J over the tracked frames, ...)."""

    j_prompted: float
    j_tracked: float
    j_occluded: float  # mean J over the middle third of the tracked frames (where the occluder passes)
    iou_pearson: float
    clips: int
    per_clip: list[tuple[float, float]] = field(default_factory=list)  # (J prompted, mean J tracked) per clip

    def line(self) -> str:
        return (f"J prompted {self.j_prompted:.3f}  J tracked {self.j_tracked:.3f}  J occluded {self.j_occluded:.3f}"
                f"  Pearson(pred IoU, IoU) {self.iou_pearson:.3f}  ({self.clips} clips)")


def track_masks(model: Sam2Model, clip: Clip, prompt: str = "click",
                memory_stride: int = 0) -> list[tuple[np.ndarray, float]]:
    """(mask [S, S] bool, predicted IoU) of every frame from the real StreamingTracker, frame 0 prompted."""
    from sam2_ros.tracking.state import TrackerOptions
    from sam2_ros.tracking.tracker import StreamingTracker

    tracker = StreamingTracker(model, TrackerOptions(memory_stride=memory_stride))
    tracker.track(clip.frames[0])
    truth = clip.masks[0, 0]
    if prompt == "box":
        ys, xs = np.nonzero(truth)
        result = tracker.add_prompt(1, box=np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32))
    else:
        result = tracker.add_prompt(1, points=np.array([inner_point(truth)], np.float32),
                                    labels=np.array([1], np.int32))
    outputs = [(result.masks[0], float(result.iou[0]))]
    for t in range(1, len(clip.frames)):
        result = tracker.track(clip.frames[t])
        outputs.append((result.masks[0], float(result.iou[0])))
    return outputs


@torch.inference_mode()
def rollout_masks(model: Sam2Model, clip: Clip, teacher: bool = False,
                  memory_stride: int = 0) -> list[tuple[np.ndarray, float]]:
    """(mask, predicted IoU) of every frame from the training unroll (one click on frame 0; memory_stride: the
    tracker's, 0 = the config's): with teacher=True every memory is encoded from the ground truth instead of the
    predictions, which splits the tracking error into drift (memories of earlier mistakes) and what the model misses
    even with perfect memories."""
    from sam2_ros.model.sam2 import preprocess
    from sam2_ros.training.unroll import decode_for_training, rollout

    size = model.config.image_size
    if teacher and clip.masks.shape[-2:] != (size, size):
        raise ValueError(f"ground-truth memories need clips at the model's {size} x {size}, "
                         f"got {clip.masks.shape[-2:]}")
    images = torch.cat([preprocess(f, size) for f in clip.frames])  # [T, 3, S, S]
    feat_s0, feat_s1, embed, pos = model.encode_image(images)
    truth = clip.masks[0, 0]
    coords = torch.tensor([[inner_point(truth)]], dtype=torch.float32)  # [1, 1, 2] pixels
    first = decode_for_training(model, model.add_no_memory(embed[:1]), feat_s0[:1], feat_s1[:1], coords,
                                torch.ones(1, 1, dtype=torch.int32), None, model.config.use_multimask(True, 1))
    gt = torch.from_numpy(clip.masks[:, :1]).transpose(0, 1) if teacher else None  # [1, T, S, S]
    outs = [first] + list(rollout(model, lambda f: (feat_s0[f:f + 1], feat_s1[f:f + 1], embed[f:f + 1]),
                                  pos[:1], first, len(clip.frames), gt,
                                  memory_stride or model.config.memory_temporal_stride_for_eval))
    size_hw = tuple(clip.frames.shape[1:3])
    # low_res is the candidate of highest predicted IoU (the one the tracker keeps), so its IoU is the maximum.
    return [((postprocess_masks(out.low_res, size_hw)[0, 0] > 0).numpy(), float(out.ious[0].max())) for out in outs]


@torch.inference_mode()
def measure(model: Sam2Model, clips: int = 8, frames: int = 31, seed: int = EVAL_SEED_BASE,
            prompt: str = "click", memory_stride: int = 0, teacher_memory: bool = False) -> Quality:
    """Prompt object 0 on frame 0 (one click at its innermost pixel, or its exact box); track it `frames`-1 frames
    (memory_stride: the tracker's, 0 = the config's). teacher_memory: track with the training unroll and memories
    from the ground truth (see rollout_masks; clicks only)."""
    if teacher_memory and prompt != "click":
        raise ValueError("teacher_memory measures click prompts only")
    model = model.eval()
    j0s, jts, jmid, pred_iou, true_iou, per_clip = [], [], [], [], [], []
    for c in range(clips):
        clip = make_eval_clip(seed + c, frames, model.config.image_size)
        if teacher_memory:
            outputs = rollout_masks(model, clip, teacher=True, memory_stride=memory_stride)
        else:
            outputs = track_masks(model, clip, prompt, memory_stride)
        js = []
        for t, (mask, iou) in enumerate(outputs):
            truth = clip.masks[t, 0]
            j = float(jaccard(mask, truth))
            if t:
                js.append(j)
            if t == 0 or truth.any():
                pred_iou.append(iou)
                true_iou.append(j)
        third = len(js) // 3
        jmid += js[third:2 * third]
        j0 = float(jaccard(outputs[0][0], clip.masks[0, 0]))
        j0s.append(j0)
        jts.append(float(np.mean(js)))
        per_clip.append((j0, jts[-1]))
    return Quality(float(np.mean(j0s)), float(np.mean(jts)), float(np.mean(jmid)), pearson(pred_iou, true_iou),
                   clips, per_clip)
