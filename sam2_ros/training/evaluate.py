"""Tracking quality of a model on held-out synthetic clips, measured through the real StreamingTracker: region IoU
(J) on the prompted frame and over the tracked frames (an occlusion in the middle), and how well the predicted IoU
follows the true IoU (Pearson correlation)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from sam2_ros.model.sam2 import Sam2Model
from sam2_ros.synthetic import inner_point, jaccard
from sam2_ros.training.data import make_eval_clip

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


@torch.inference_mode()
def measure(model: Sam2Model, clips: int = 8, frames: int = 31, seed: int = EVAL_SEED_BASE,
            prompt: str = "click", memory_stride: int = 0) -> Quality:
    """Prompt object 0 on frame 0 (one click at its innermost pixel, or its exact box); track it `frames`-1 frames
    (memory_stride: the tracker's, 0 = the config's)."""
    from sam2_ros.tracking.state import TrackerOptions
    from sam2_ros.tracking.tracker import StreamingTracker

    model = model.eval()
    j0s, jts, jmid, pred_iou, true_iou, per_clip = [], [], [], [], [], []
    for c in range(clips):
        clip = make_eval_clip(seed + c, frames, model.config.image_size)
        tracker = StreamingTracker(model, TrackerOptions(memory_stride=memory_stride))
        tracker.track(clip.frames[0])
        truth = clip.masks[0, 0]
        if prompt == "box":
            ys, xs = np.nonzero(truth)
            result = tracker.add_prompt(1, box=np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32))
        else:
            result = tracker.add_prompt(1, points=np.array([inner_point(truth)], np.float32),
                                        labels=np.array([1], np.int32))
        j0 = float(jaccard(result.masks[0], truth))
        pred_iou.append(float(result.iou[0]))
        true_iou.append(j0)
        js = []
        for t in range(1, frames):
            result = tracker.track(clip.frames[t])
            truth = clip.masks[t, 0]
            j = jaccard(result.masks[0], truth)
            js.append(j)
            if truth.any():
                pred_iou.append(float(result.iou[0]))
                true_iou.append(j)
        third = len(js) // 3
        jmid += js[third:2 * third]
        j0s.append(j0)
        jts.append(float(np.mean(js)))
        per_clip.append((j0, jts[-1]))
    return Quality(float(np.mean(j0s)), float(np.mean(jts)), float(np.mean(jmid)), pearson(pred_iou, true_iou),
                   clips, per_clip)
