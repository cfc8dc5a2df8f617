"""Candidate masks of an ambiguous prompt: SAM 2's multimask outputs ranked by predicted IoU, with a stability score,
kept per object (its last multimask prompt only) so that one of them can be selected afterwards."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from sam2_ros.model.mask_decoder import stability_score
from sam2_ros.model.sam2 import postprocess_masks
from sam2_ros.tracking.state import Candidates, Stamp

STABILITY_OFFSET = 1.0  # SAM's automatic-mask stability: masks at logit > +1 vs > -1


def mask_stability(logits: torch.Tensor) -> torch.Tensor:
    """Stability of mask logits [..., s, s] -> [...]: IoU of the mask thresholded at +1 and at -1 (SAM's score; 1 for
    an empty mask)."""
    return stability_score(logits.float(), STABILITY_OFFSET)


@dataclass(frozen=True)
class CandidateRecord:
    """What the tracker keeps of an object's last multimask prompt (dropped when its frame leaves the history)."""

    frame_index: int
    low_res: torch.Tensor  # [K, 1, s, s] logits, best predicted IoU first
    iou: torch.Tensor  # [K] float32
    stability: torch.Tensor  # [K] float32


def rank_candidates(frame_index: int, multimasks: torch.Tensor, ious: torch.Tensor) -> CandidateRecord:
    """One prompt's decoder candidates (multimasks [K, s, s] logits, ious [K]) ordered by predicted IoU, best first
    (ties keep the decoder's order)."""
    order = torch.sort(ious.float(), descending=True, stable=True).indices
    low_res = multimasks[order].detach().float().clone()[:, None]  # [K, 1, s, s]
    return CandidateRecord(frame_index, low_res, ious[order].detach().float().clone(),
                           mask_stability(low_res[:, 0]))


def to_candidates(record: CandidateRecord, object_id: int, stamp: Stamp, size: tuple[int, int]) -> Candidates:
    """The record at the frame's resolution (H, W), upsampled exactly as the tracker upsamples its results."""
    logits = postprocess_masks(record.low_res, size)[:, 0].float().cpu().numpy()  # [K, H, W]
    return Candidates(object_id=object_id, stamp=stamp, masks=logits > 0, mask_logits=logits,
                      iou=record.iou.cpu().numpy(), stability=record.stability.cpu().numpy(),
                      low_res_logits=record.low_res[:, 0].cpu().numpy())
