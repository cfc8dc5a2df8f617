"""SAM 2's training objective: sigmoid focal + dice on masks, MSE between predicted and actual IoU, and a binary
cross-entropy on the object score; with several candidate masks only the best one (lowest focal+dice) is trained.

All functions take logits and 0/1 targets batch-first and return per-row losses [N] (the caller averages), so a row
whose object is absent can be masked out of the mask terms as SAM 2 does.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    """Weights of the four terms (SAM 2's training config: focal 20, dice 1, IoU 1, object score 1)."""

    focal: float = 20.0
    dice: float = 1.0
    iou: float = 1.0
    score: float = 1.0


def sigmoid_focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25,
                       gamma: float = 2.0) -> torch.Tensor:
    """Focal loss per row, mean over pixels: logits/target [N, ...] -> [N]; alpha weighs positives (< 0: none)."""
    target = target.to(logits.dtype)
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)  # probability given to the true class
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = loss * (alpha * target + (1 - alpha) * (1 - target))
    return loss.flatten(1).mean(1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft dice loss per row: 1 - (2 sum(p t) + eps) / (sum(p) + sum(t) + eps); [N, ...] -> [N]."""
    prob = logits.sigmoid().flatten(1)
    target = target.to(logits.dtype).flatten(1)
    return 1 - (2 * (prob * target).sum(1) + eps) / (prob.sum(1) + target.sum(1) + eps)


def mask_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Actual IoU of the thresholded masks per row (1 when both are empty), no gradient: [N, ...] -> [N];
    a soft target counts as the object where it is above 0.5."""
    pred = (logits.detach() > 0).flatten(1)
    target = (target.float() > 0.5).flatten(1)
    inter = (pred & target).sum(1).float()
    union = (pred | target).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def iou_mse_loss(pred_iou: torch.Tensor, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error between the predicted IoU [N] and the IoU the mask logits [N, ...] actually reach -> [N]."""
    return (pred_iou - mask_iou(logits, target)) ** 2


def object_score_loss(score_logits: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the object-score logit [N] against whether the object is visible [N] -> [N]."""
    return F.binary_cross_entropy_with_logits(score_logits, present.to(score_logits.dtype), reduction="none")


@dataclass
class LossTerms:
    """Mean of each term over the rows (mask terms over rows with a visible object) and the weighted total."""

    total: torch.Tensor
    focal: torch.Tensor
    dice: torch.Tensor
    iou: torch.Tensor
    score: torch.Tensor
    best_iou: torch.Tensor  # actual IoU of the trained candidate (for logging)

    def as_dict(self) -> dict[str, float]:
        return {k: float(getattr(self, k).detach()) for k in ("total", "focal", "dice", "iou", "score", "best_iou")}


def sam2_loss(masks: torch.Tensor, pred_ious: torch.Tensor, score_logits: torch.Tensor, target: torch.Tensor,
              weights: LossWeights = LossWeights()) -> LossTerms:
    """Loss of one decoder call: masks [N, M, H, W] logits (M candidates), pred_ious [N, M], score_logits [N, 1],
    target [N, H, W] in [0, 1] (soft allowed) at the masks' resolution. Only the candidate with the lowest
    focal+dice gets mask gradients; every candidate's IoU prediction is trained; mask and IoU terms count only rows
    whose object is visible."""
    n, m = masks.shape[:2]
    rows = target[:, None].expand(n, m, *target.shape[1:]).reshape(n * m, -1)
    flat = masks.reshape(n * m, -1)
    focal = sigmoid_focal_loss(flat, rows).view(n, m)
    dice = dice_loss(flat, rows).view(n, m)
    iou = iou_mse_loss(pred_ious.reshape(-1), flat, rows).view(n, m)
    best = (focal * weights.focal + dice * weights.dice).detach().argmin(dim=1)  # [N]
    pick = torch.arange(n, device=masks.device)
    focal, dice = focal[pick, best], dice[pick, best]
    present = (target.flatten(1) > 0).any(dim=1).to(masks.dtype)  # [N]
    score = object_score_loss(score_logits.reshape(n), present)
    visible = present.sum().clamp(min=1)
    focal_m = (focal * present).sum() / visible
    dice_m = (dice * present).sum() / visible
    iou_m = (iou.mean(1) * present).sum() / visible
    score_m = score.mean()
    total = weights.focal * focal_m + weights.dice * dice_m + weights.iou * iou_m + weights.score * score_m
    best_iou = (mask_iou(masks[pick, best], target) * present).sum() / visible
    return LossTerms(total, focal_m.detach(), dice_m.detach(), iou_m.detach(), score_m.detach(), best_iou)
