"""Scores of tracking against the simulated world's ground truth."""
from __future__ import annotations

import numpy as np


def jaccard(pred: np.ndarray, truth: np.ndarray) -> float:
    """Region similarity J (IoU) of two boolean masks; 1.0 when both are empty."""
    union = np.count_nonzero(pred | truth)
    return 1.0 if union == 0 else np.count_nonzero(pred & truth) / union


class IdentityScore:
    """Identity over a run (CLEAR-MOT style): each frame the tracker's masks are paired one-to-one with the ground
    truth's by mask IoU (>= min_iou, best total); an id switch is a ground-truth object paired with another id than
    the one it was last paired with. Also the frames on which an object of the tracker pairs with no ground truth."""

    def __init__(self, min_iou: float = 0.3) -> None:
        self.min_iou = min_iou
        self.switches = 0
        self.last: dict[int, int] = {}  # truth id -> tracker id it was last paired with
        self.pairs: list[dict[int, int]] = []  # per frame: truth id -> tracker id
        self.unpaired = 0  # (object, frame)s of the tracker on no ground truth

    def update(self, pred_ids: list[int], pred_masks: np.ndarray, truth_ids: list[int],
               truth_masks: np.ndarray) -> dict[int, int]:
        """One frame: pred_masks [N, H, W], truth_masks [M, H, W] bool -> this frame's pairs {truth id: tracker id}."""
        from sam2_ros.objects.assignment import assign

        iou = np.zeros((len(truth_ids), len(pred_ids)))
        for i in range(len(truth_ids)):
            if truth_masks[i].any():
                for j in range(len(pred_ids)):
                    iou[i, j] = jaccard(pred_masks[j], truth_masks[i]) if pred_masks[j].any() else 0.0
        frame = {truth_ids[i]: pred_ids[j] for i, j in assign(iou, iou >= self.min_iou)}
        for truth, pred in frame.items():
            if truth in self.last and self.last[truth] != pred:
                self.switches += 1
            self.last[truth] = pred
        self.unpaired += len(pred_ids) - len(frame)
        self.pairs.append(frame)
        return frame
