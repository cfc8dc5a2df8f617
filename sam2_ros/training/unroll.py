"""A differentiable, unrolled SAM 2 over short clips (the training counterpart of the streaming tracker).

Frame 0 of every clip is prompted (clicks or a box, optionally followed by a corrective click); each later frame
attends to the prompted frame's memory, the memories of up to num_maskmem-1 previous frames and the object pointers
of up to max_obj_ptrs_in_encoder-1 earlier frames, selected and assembled by the tracker's own memory-bank code,
and is decoded without prompts. A clip of one frame is plain promptable image segmentation. Losses are summed over
frames (SAM 2 trains the same way).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sam2_ros.model.mask_decoder import pick_per_batch
from sam2_ros.model.sam2 import NO_OBJ_SCORE, Sam2Model
from sam2_ros.tracking.memory_bank import MemoryAssembler, select_memory, trim
from sam2_ros.tracking.state import Memory, ObjectState
from sam2_ros.tracking.tracker import PREV_LOGIT_CLAMP
from sam2_ros.training.losses import LossTerms, LossWeights, sam2_loss
from sam2_ros.training.prompt_sampling import corrective_click, initial_prompt


@dataclass
class StepOutput:
    """Per-frame loss terms of one unrolled batch and their sum."""

    total: torch.Tensor
    frames: list[LossTerms]

    def summary(self) -> dict[str, float]:
        """Mean of every logged term over the decoder calls of this batch."""
        keys = self.frames[0].as_dict().keys()
        return {k: sum(f.as_dict()[k] for f in self.frames) / len(self.frames) for k in keys}


@dataclass
class _Decoded:
    masks: torch.Tensor  # [N, M, s, s] raw candidate logits (no no-object override)
    ious: torch.Tensor  # [N, M]
    score: torch.Tensor  # [N, 1]
    low_res: torch.Tensor  # [N, 1, s, s] chosen candidate, NO_OBJ_SCORE where absent (what the tracker keeps)
    obj_ptr: torch.Tensor  # [N, C]


def decode_for_training(model: Sam2Model, pix: torch.Tensor, feat_s0: torch.Tensor, feat_s1: torch.Tensor,
                        coords: torch.Tensor | None, labels: torch.Tensor | None,
                        mask_input: torch.Tensor | None, multimask: bool) -> _Decoded:
    """Decoder call that keeps the raw candidates for the loss and picks the tracker's output for memory."""
    n = pix.shape[0]
    if coords is None:
        coords = pix.new_zeros(n, 1, 2)
        labels = torch.full((n, 1), -1, dtype=torch.int32, device=pix.device)
    sparse, dense = model.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=mask_input)
    masks, ious, tokens, score = model.sam_mask_decoder.predict_all(
        pix, model.sam_prompt_encoder.get_dense_pe(), sparse, dense, False, (feat_s0, feat_s1))
    if multimask:
        masks, ious, tokens = masks[:, 1:], ious[:, 1:], tokens[:, 1:]
    else:
        masks, ious, tokens = masks[:, :1], ious[:, :1], tokens[:, :1]
    best = ious.detach().argmax(dim=1)  # [N]
    low_res = pick_per_batch(masks, best)  # [N, 1, s, s]
    low_res = torch.where(score[..., None, None] > 0, low_res, NO_OBJ_SCORE)
    token = pick_per_batch(tokens, best)[:, 0]  # [N, C]
    obj_ptr = model._mix_no_obj_ptr(model.obj_ptr_proj(token), score)
    return _Decoded(masks, ious, score, low_res, obj_ptr)


def _upsample(logits: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(logits, size=(size, size), mode="bilinear", align_corners=False)


def _frame_loss(out: _Decoded, target: torch.Tensor, loss_size: int, weights: LossWeights) -> LossTerms:
    """Loss of one decoder call against target [N, L, L] float (already at the loss resolution)."""
    return sam2_loss(_upsample(out.masks, loss_size), out.ious, out.score, target, weights)


def unroll(model: Sam2Model, images: torch.Tensor, targets: torch.Tensor, gen: torch.Generator,
           prompt_kind: str = "click", num_clicks: int = 1, correct: bool = False,
           weights: LossWeights = LossWeights(), trainable_encoder: bool = True, loss_size: int = 128) -> StepOutput:
    """Forward a batch through prompting + tracking and return its losses.

    images [B, T, 3, S, S] normalised; targets [B, T, K, S, S] bool (K objects per clip, each visible on frame 0).
    Rows of the decoder batch are (clip, object) pairs: N = B*K. Losses are computed at loss_size x loss_size
    (logits upsampled bilinearly, targets area-averaged to soft values) to keep the per-pixel terms cheap.
    """
    b, t, _, size, _ = images.shape
    k = targets.shape[2]
    cfg = model.config
    flat = images.flatten(0, 1)
    with torch.set_grad_enabled(trainable_encoder and torch.is_grad_enabled()):
        feat_s0, feat_s1, embed, pos = model.encode_image(flat)  # [B*T, ...]

    def rows(x: torch.Tensor, frame: int) -> torch.Tensor:  # frame `frame` of every clip, once per object
        x = x.view(b, t, *x.shape[1:])[:, frame]
        return x.repeat_interleave(k, dim=0)  # [N, ...]

    image_pos = pos[:1]
    target_rows = targets.transpose(1, 2).reshape(b * k, t, size, size)  # [N, T, S, S] bool
    soft = target_rows.float()
    if loss_size != size:
        soft = F.adaptive_avg_pool2d(soft, (loss_size, loss_size))  # [N, T, L, L] in [0, 1]
    losses: list[LossTerms] = []
    # ---- frame 0: prompted
    gt0 = target_rows[:, 0]
    coords, labels = initial_prompt(gt0, gen, prompt_kind, num_clicks)
    s0, s1, e0 = rows(feat_s0, 0), rows(feat_s1, 0), rows(embed, 0)
    pix0 = model.add_no_memory(e0)
    out = decode_for_training(model, pix0, s0, s1, coords, labels, None, cfg.use_multimask(True, coords.shape[1]))
    losses.append(_frame_loss(out, soft[:, 0], loss_size, weights))
    if correct:
        pred = _upsample(out.low_res.detach(), size)[:, 0] > 0
        xy, lab = corrective_click(pred, gt0, gen)
        coords, labels = torch.cat([coords, xy], dim=1), torch.cat([labels, lab], dim=1)
        mask_input = out.low_res.detach().clamp(-PREV_LOGIT_CLAMP, PREV_LOGIT_CLAMP)
        out = decode_for_training(model, pix0, s0, s1, coords, labels, mask_input,
                                  cfg.use_multimask(True, coords.shape[1]))
        losses.append(_frame_loss(out, soft[:, 0], loss_size, weights))
    if t == 1:  # single frames: no later frame reads a memory
        return StepOutput(sum(term.total for term in losses), losses)

    def frame_rows(f: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return rows(feat_s0, f), rows(feat_s1, f), rows(embed, f)

    for f, out in enumerate(rollout(model, frame_rows, image_pos, out, t), start=1):
        losses.append(_frame_loss(out, soft[:, f], loss_size, weights))
    total = sum(term.total for term in losses)
    return StepOutput(total, losses)


def ground_truth_memory(mask: torch.Tensor, embed: torch.Tensor,
                        model: Sam2Model) -> tuple[torch.Tensor, torch.Tensor]:
    """Memory of a frame encoded from a ground-truth mask [N, S, S] bool instead of a prediction (a diagnostic)."""
    logits = mask[:, None].float() * 2 - 1  # [N, 1, S, S]: > 0 inside
    present = mask.flatten(1).any(dim=1, keepdim=True).float() * 2 - 1  # [N, 1]: > 0 when visible
    return model.encode_memory(embed, logits, present, binarize=True)


def rollout(model: Sam2Model, frame_rows: Callable[[int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
            image_pos: torch.Tensor, first: _Decoded, num_frames: int,
            teacher: torch.Tensor | None = None, stride: int = 1) -> Iterator[_Decoded]:
    """Track frames 1..num_frames-1 after the prompted frame 0 (its decoder output `first`), yielding each frame's
    decoder output. Memories are chosen and assembled by the streaming tracker's own code (select_memory,
    MemoryAssembler) at memory stride `stride`; every row of the batch has the same frames, so one memory bank holds
    them all, its tensors carrying the N rows (and the gradients).

    frame_rows(f) -> (feat_s0, feat_s1, image_embed) rows [N, ...] of frame f; image_pos [1, C, h, w].
    teacher [N, T, S, S] bool: memories are encoded from these masks instead of the predictions (measures how much
    of the error is drift: a diagnostic, not training)."""
    cfg = model.config
    size = cfg.image_size
    e0 = frame_rows(0)[2]
    n = e0.shape[0]
    if teacher is None:
        maskmem, maskmem_pos = model.encode_memory(e0, _upsample(first.low_res, size), first.score,
                                                   cfg.binarize_mask_from_pts_for_mem_enc)
    else:
        maskmem, maskmem_pos = ground_truth_memory(teacher[:, 0], e0, model)
    bank = ObjectState(0)
    bank.cond[0] = Memory(first.obj_ptr, first.score, maskmem, None, None)
    assembler = MemoryAssembler(model)  # one per pass: its cached slot encodings belong to this graph
    assembler.set_maskmem_pos(maskmem_pos)
    for f in range(1, num_frames):
        layout = select_memory(bank, f, cfg, stride)
        memory, memory_pos, ptr_tok, ptr_pos = assembler.assemble(layout.rows(n))
        s0, s1, ef = frame_rows(f)
        pix = model.attend_memory(ef, image_pos.expand(ef.shape[0], -1, -1, -1), memory, memory_pos,
                                  ptr_tok, ptr_pos)
        out = decode_for_training(model, pix, s0, s1, None, None, None, cfg.use_multimask(False, 0))
        yield out
        if f < num_frames - 1:
            if teacher is None:
                maskmem, _ = model.encode_memory(ef, _upsample(out.low_res, size), out.score, False)
            else:
                maskmem, _ = ground_truth_memory(teacher[:, f], ef, model)
            bank.recent[f] = Memory(out.obj_ptr, out.score, maskmem, None, None)
            trim(bank, f + 1, cfg, stride)
