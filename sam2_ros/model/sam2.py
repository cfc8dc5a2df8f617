"""SAM 2 as four inference parts (image encoder, prompt+mask decoder, memory attention, memory encoder) plus the
small glue tensors the streaming tracker needs. Root parameter names equal Meta's checkpoint keys."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sam2_ros.model.common import MLP
from sam2_ros.model.config import Sam2Config
from sam2_ros.model.image_encoder import ImageEncoder
from sam2_ros.model.mask_decoder import MaskDecoder, pick_per_batch
from sam2_ros.model.memory_attention import MemoryAttention
from sam2_ros.model.memory_encoder import MemoryEncoder
from sam2_ros.model.perceiver import SpatialPerceiver
from sam2_ros.model.position_encoding import get_1d_sine_pe
from sam2_ros.model.prompt_encoder import PromptEncoder
from sam2_ros.model.transfer import upload

NO_OBJ_SCORE = -1024.0  # mask logit written where the decoder says the object is absent
IMAGE_MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics of [0, 1] RGB, as Meta's frame loader uses
IMAGE_STD = (0.229, 0.224, 0.225)
MASK_OUT_SCALE, MASK_OUT_BIAS = 20.0, -10.0  # binary mask -> logits -10 / +10 (Meta's mask-as-output)


@dataclass
class DecoderOutput:
    """Result of `Sam2Model.decode` (M = 3 with multimask, else 1; s = 4h low-res side, S = image side)."""

    low_res_masks: torch.Tensor  # [B, 1, s, s] logits of the chosen mask, NO_OBJ_SCORE where absent
    high_res_masks: torch.Tensor  # [B, 1, S, S] the same, bilinearly upsampled
    iou: torch.Tensor  # [B, 1] predicted IoU of the chosen mask
    obj_ptr: torch.Tensor  # [B, C] object pointer (no-object pointer mixed in when absent)
    object_score_logits: torch.Tensor  # [B, 1] presence logit (> 0: object visible)
    low_res_multimasks: torch.Tensor  # [B, M, s, s] all candidates, NO_OBJ_SCORE where absent
    ious: torch.Tensor  # [B, M] IoU of every candidate


def preprocess(rgb: np.ndarray | torch.Tensor, image_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """HxWx3 uint8 RGB -> [1, 3, S, S] normalised float32, resized like Meta's video frame loader.

    Meta resizes with PIL's default filter (antialiased bicubic, a=-0.5) to uint8, then scales to [0, 1] and
    normalises with ImageNet mean/std. PIL resamples width then height and rounds/clamps to uint8 after each pass;
    doing the same with torch's antialiased bicubic (same kernel) matches PIL to one grey level at ~0.001% of values.
    """
    image = torch.as_tensor(rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {tuple(image.shape)}")
    if image.dtype != torch.uint8:
        raise ValueError(f"expected uint8 RGB, got {image.dtype}")
    image = upload(image, device)  # uint8 (4x smaller than float), pinned + non_blocking to a GPU
    x = image.permute(2, 0, 1).unsqueeze(0).float()  # [1, 3, H, W] 0..255
    height, width = x.shape[-2:]
    for size in ((height, image_size), (image_size, image_size)):  # width pass, then height pass
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).round().clamp(0, 255)
    mean, std = _normalisation(x.device)
    return (x / 255.0 - mean) / std


_NORMALISATION: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}


def _normalisation(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet mean and std [1, 3, 1, 1] float32, made once per device (not uploaded every frame)."""
    found = _NORMALISATION.get(device)
    if found is None:
        found = _NORMALISATION[device] = (torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1).to(device),
                                          torch.tensor(IMAGE_STD).view(1, 3, 1, 1).to(device))
    return found


def postprocess_masks(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Mask logits [B, 1, s, s] -> [B, 1, H, W] at the source image size (bilinear, as Meta's video predictor)."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits.float(), size=tuple(size), mode="bilinear", align_corners=False)


class Sam2Model(nn.Module):
    """SAM 2 / 2.1: submodules and glue parameters under Meta's names; inference is split into four parts."""

    def __init__(self, config: Sam2Config) -> None:
        super().__init__()
        self.config = config
        c, d = config.hidden_dim, config.mem_dim
        # Registration order follows Meta's SAM2Base so state_dict() lists keys in the checkpoint's order.
        self.image_encoder = ImageEncoder.from_config(config.image_encoder)
        if config.use_obj_ptrs_in_encoder:
            # Turns a [B, 1, S, S] mask into stride-4 logits for the decoder when a mask prompt is used as output.
            self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.memory_attention = MemoryAttention(config.memory_attention)
        self.memory_encoder = MemoryEncoder(config.memory_encoder)
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(config.num_maskmem, 1, 1, d))  # per memory slot
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, c))
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, c))
        if config.pred_obj_scores and config.use_obj_ptrs_in_encoder:
            self.no_obj_ptr = nn.Parameter(torch.zeros(1, c))
        if config.no_obj_embed_spatial:
            self.no_obj_embed_spatial = nn.Parameter(torch.zeros(1, d))
        self.sam_prompt_encoder = PromptEncoder(
            embed_dim=c, image_embedding_size=(config.feat_size, config.feat_size),
            input_image_size=(config.image_size, config.image_size), mask_in_chans=config.mask_in_chans)
        self.sam_mask_decoder = MaskDecoder(config.mask_decoder)
        if not config.use_obj_ptrs_in_encoder:
            self.obj_ptr_proj = nn.Identity()
        elif config.use_mlp_for_obj_ptr_proj:
            self.obj_ptr_proj = MLP(c, c, c, 3)
        else:
            self.obj_ptr_proj = nn.Linear(c, c)
        # Temporal encoding of pointers is computed at width C and projected to D (Identity without the projection).
        self.obj_ptr_tpos_proj = nn.Linear(c, d) if config.proj_tpos_enc_in_obj_ptrs else nn.Identity()
        if config.spatial_perceiver is not None:  # EdgeTAM
            self.spatial_perceiver = SpatialPerceiver(config.spatial_perceiver)
        for p in (self.maskmem_tpos_enc, self.no_mem_embed, self.no_mem_pos_enc,
                  getattr(self, "no_obj_ptr", None), getattr(self, "no_obj_embed_spatial", None)):
            if p is not None:
                nn.init.trunc_normal_(p, std=0.02)

    # ------------------------------------------------------------------ part 1: image encoder
    def encode_image(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """image [B, 3, S, S] normalised -> (feat_s0 [B, C/8, S/4, S/4], feat_s1 [B, C/4, S/8, S/8],
        image_embed [B, C, S/16, S/16], image_pos [B, C, S/16, S/16])."""
        features, positions = self.image_encoder(image)  # highest resolution first
        feat_s0, feat_s1, image_embed = features[-3], features[-2], features[-1]
        if self.config.use_high_res_features_in_sam:
            # Project the skip levels once per frame instead of once per prompt.
            feat_s0 = self.sam_mask_decoder.conv_s0(feat_s0)
            feat_s1 = self.sam_mask_decoder.conv_s1(feat_s1)
        return feat_s0, feat_s1, image_embed, positions[-1]

    # ------------------------------------------------------------------ part 2: prompt encoder + mask decoder
    def decode(self, image_embed: torch.Tensor, feat_s0: torch.Tensor | None, feat_s1: torch.Tensor | None,
               point_coords: torch.Tensor | None, point_labels: torch.Tensor | None,
               mask_input: torch.Tensor | None = None, multimask: bool = False) -> DecoderOutput:
        """Masks, IoU, presence and object pointer for one prompt set per batch row (Meta's _forward_sam_heads).

        point_coords [B, N, 2] pixels of the S x S model input (x, y); point_labels [B, N] int (1 fg, 0 bg,
        2/3 box corners, -1 padding); None for both = no points. mask_input [B, 1, s, s] logits (resized with
        antialiasing when another size is given) or None.
        """
        b = image_embed.shape[0]
        if point_coords is None:
            point_coords = image_embed.new_zeros(b, 1, 2)
            point_labels = torch.full((b, 1), -1, dtype=torch.int32, device=image_embed.device)
        elif point_labels is None or point_labels.shape != point_coords.shape[:2]:
            raise ValueError("point_labels must be given with point_coords, shaped [B, N]")
        if mask_input is not None:
            expected = self.sam_prompt_encoder.mask_input_size
            if mask_input.ndim != 4 or mask_input.shape[1] != 1:
                raise ValueError(f"mask_input must be [B, 1, H, W], got {tuple(mask_input.shape)}")
            if tuple(mask_input.shape[-2:]) != tuple(expected):
                mask_input = F.interpolate(mask_input.float(), size=tuple(expected), mode="bilinear",
                                           align_corners=False, antialias=True)
        sparse, dense = self.sam_prompt_encoder(points=(point_coords, point_labels), boxes=None, masks=mask_input)
        high_res = (feat_s0, feat_s1) if self.config.use_high_res_features_in_sam else None
        multimasks, ious, tokens, object_score_logits = self.sam_mask_decoder(
            image_embeddings=image_embed, image_pe=self.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask,
            repeat_image=False, high_res_features=high_res)
        present = object_score_logits > 0  # [B, 1]
        if self.config.pred_obj_scores:
            # Absent objects get a hard "no mask" in every candidate (what the memory encoder then sees).
            multimasks = torch.where(present[..., None, None], multimasks, NO_OBJ_SCORE)
        multimasks = multimasks.float()
        if multimask:
            best = ious.argmax(dim=-1)  # [B]
            low_res = pick_per_batch(multimasks, best)  # [B, 1, s, s]
            iou = pick_per_batch(ious, best)  # [B, 1]
            token = pick_per_batch(tokens, best)[:, 0] if tokens.shape[1] > 1 else tokens[:, 0]  # [B, C]
        else:
            low_res, iou, token = multimasks, ious, tokens[:, 0]
        s = low_res.shape[-1]
        high_res_masks = F.interpolate(low_res, size=(s * 4, s * 4), mode="bilinear", align_corners=False)
        obj_ptr = self._mix_no_obj_ptr(self.obj_ptr_proj(token), object_score_logits)
        return DecoderOutput(low_res, high_res_masks, iou, obj_ptr, object_score_logits, multimasks, ious)

    def _mix_no_obj_ptr(self, obj_ptr: torch.Tensor, object_score_logits: torch.Tensor) -> torch.Tensor:
        """Blend in the learned no-object pointer by presence (hard 0/1, or sigmoid with soft_no_obj_ptr)."""
        cfg = self.config
        if not cfg.pred_obj_scores:
            return obj_ptr
        weight = object_score_logits.sigmoid() if cfg.soft_no_obj_ptr else (object_score_logits > 0).float()
        if cfg.fixed_no_obj_ptr:
            obj_ptr = weight * obj_ptr
        return obj_ptr + (1 - weight) * self.no_obj_ptr

    def mask_as_output(self, image_embed: torch.Tensor, feat_s0: torch.Tensor | None,
                       feat_s1: torch.Tensor | None, mask: torch.Tensor) -> DecoderOutput:
        """A mask prompt [B, 1, S, S] (bool or 0/1) taken as the output itself (Meta's _use_mask_as_output).

        Logits are +-10, IoU 1, presence from whether the mask has any pixel; the pointer comes from the decoder
        fed the downsampled mask. image_embed is the frame's own embedding (not memory-conditioned).
        """
        mask = mask.float()
        high_res = mask * MASK_OUT_SCALE + MASK_OUT_BIAS  # [B, 1, S, S]
        side = high_res.shape[-1] // 4
        low_res = F.interpolate(high_res, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
        iou = mask.new_ones(mask.shape[0], 1)
        present = (mask.flatten(1) > 0).any(dim=1, keepdim=True).float()  # [B, 1]
        if self.config.use_obj_ptrs_in_encoder:
            obj_ptr = self.decode(image_embed, feat_s0, feat_s1, None, None, self.mask_downsample(mask)).obj_ptr
        else:
            obj_ptr = mask.new_zeros(mask.shape[0], self.config.hidden_dim)
        score = MASK_OUT_SCALE * present + MASK_OUT_BIAS  # [B, 1]
        if self.config.pred_obj_scores:
            if self.config.fixed_no_obj_ptr:
                obj_ptr = present * obj_ptr
            obj_ptr = obj_ptr + (1 - present) * self.no_obj_ptr
        return DecoderOutput(low_res, high_res, iou, obj_ptr, score, low_res, iou)

    # ------------------------------------------------------------------ part 3: memory attention
    def attend_memory(self, curr: torch.Tensor, curr_pos: torch.Tensor, memory: torch.Tensor,
                      memory_pos: torch.Tensor, obj_ptrs: torch.Tensor, obj_ptr_pos: torch.Tensor) -> torch.Tensor:
        """Condition the frame on its memory: curr/curr_pos [B, C, h, w]; memory/memory_pos [B, Ms, D] spatial
        memory tokens (Ms = frames*h*w, rotary on keys); obj_ptrs/obj_ptr_pos [B, P, D] pointer tokens (P may be 0)
        -> [B, C, h, w]."""
        b, c, h, w = curr.shape
        tokens = curr.flatten(2).transpose(1, 2)  # [B, hw, C]
        pos = curr_pos.flatten(2).transpose(1, 2)
        out = self.memory_attention(tokens, pos, memory, memory_pos, obj_ptrs, obj_ptr_pos, (h, w))  # [B, hw, C]
        return out.transpose(1, 2).reshape(b, c, h, w)

    def add_no_memory(self, curr: torch.Tensor) -> torch.Tensor:
        """A frame with no memory yet (first prompted frame): curr [B, C, h, w] + the learned no-memory embedding."""
        return curr + self.no_mem_embed.reshape(1, -1, 1, 1)

    # ------------------------------------------------------------------ part 4: memory encoder
    def encode_memory(self, pix_feat: torch.Tensor, high_res_masks: torch.Tensor,
                      object_score_logits: torch.Tensor, binarize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory of a frame: pix_feat [B, C, h, w] (the frame's own embedding), high_res_masks [B, 1, S, S]
        logits, object_score_logits [B, 1] -> (maskmem_features [B, D, h, w], maskmem_pos [B, D, h, w]); with
        EdgeTAM's spatial perceiver the memory is its tokens instead: both [B, D, L] (L = 512, channel-first like
        the grid, so the bank flattens either the same way).
        binarize: threshold the logits instead of a sigmoid (Meta does it for frames prompted with points)."""
        cfg = self.config
        mask = (high_res_masks > 0).float() if binarize else torch.sigmoid(high_res_masks)
        mask = mask * cfg.sigmoid_scale_for_mem_enc + cfg.sigmoid_bias_for_mem_enc
        features, pos = self.memory_encoder(pix_feat, mask)  # [B, D, h, w] each
        if cfg.no_obj_embed_spatial:
            absent = (object_score_logits <= 0).float()[..., None, None]  # [B, 1, 1, 1]
            features = features + absent * self.no_obj_embed_spatial[..., None, None]
        if cfg.spatial_perceiver is not None:
            tokens, token_pos = self.spatial_perceiver(features, pos)  # [B, L, D] each
            return tokens.transpose(1, 2), token_pos.transpose(1, 2)  # [B, D, L]
        return features, pos

    # ------------------------------------------------------------------ glue (tracking.memory_bank assembles memories)
    def memory_pos(self, maskmem_pos: torch.Tensor, t_pos: int) -> torch.Tensor:
        """Position of one memory frame's tokens: maskmem_pos [B, D, h, w] + the temporal slot encoding -> [B, hw, D].

        t_pos: 0 for prompted (conditioning) frames, else num_maskmem - frames_ago (1 = oldest .. num_maskmem-1 =
        previous frame)."""
        n = self.config.num_maskmem
        if not 0 <= t_pos < n:
            raise ValueError(f"t_pos must be in [0, {n}), got {t_pos}")
        return maskmem_pos.flatten(2).transpose(1, 2) + self.maskmem_tpos_enc[n - t_pos - 1].reshape(1, 1, -1)

    def pointer_pos(self, rel_t: torch.Tensor | Sequence[float], max_rel: float) -> torch.Tensor:
        """Temporal encoding of object pointers: rel_t [P] frame distances (signed in 2.1), max_rel the largest
        possible distance (min(num_frames, max_obj_ptrs_in_encoder) - 1) -> [P, D]."""
        cfg = self.config
        if max_rel <= 0:
            raise ValueError(f"max_rel must be positive, got {max_rel}")
        device = self.no_mem_embed.device
        if isinstance(rel_t, torch.Tensor):
            rel_t = rel_t.to(device=device, dtype=torch.float32)
        else:  # a list of distances: uploaded without waiting for the queued encoder work
            rel_t = upload(torch.tensor(rel_t, dtype=torch.float32), device)
        if not cfg.add_tpos_enc_to_obj_ptrs:
            return rel_t.new_zeros(rel_t.shape[0], cfg.mem_dim)
        width = cfg.hidden_dim if cfg.proj_tpos_enc_in_obj_ptrs else cfg.mem_dim
        return self.obj_ptr_tpos_proj(get_1d_sine_pe(rel_t / max_rel, dim=width))

    def pointer_tokens(self, obj_ptrs: torch.Tensor, ptr_pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pointers [B, P, C] and their positions [P, D] -> tokens and positions [B, P*C/D, D]: a pointer wider
        than the memory width is split into C/D consecutive tokens that share its position."""
        b, p, c = obj_ptrs.shape
        d = self.config.mem_dim
        split = c // d
        tokens = obj_ptrs.reshape(b, p * split, d)
        pos = ptr_pos.repeat_interleave(split, dim=0).unsqueeze(0).expand(b, -1, -1)
        return tokens, pos
