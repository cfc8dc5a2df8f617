"""Sam2Config: the sub-module configs plus SAM2Base's tracking settings, and the registry of named configs.

Values are read off Meta's YAML files (sam2/configs/sam2{,.1}/*.yaml) with the overrides its
`build_sam2_video_predictor` adds (dynamic multimask via stability, binarised point-prompted masks for memory).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace

from sam2_ros.model.hiera import hiera_preset
from sam2_ros.model.image_encoder import ImageEncoderConfig, NeckConfig, image_encoder_preset
from sam2_ros.model.mask_decoder import MaskDecoderConfig
from sam2_ros.model.memory_attention import MemoryAttentionConfig
from sam2_ros.model.memory_encoder import MemoryEncoderConfig
from sam2_ros.model.perceiver import PerceiverConfig
from sam2_ros.model.repvit import RepVitConfig

SIZE_MULTIPLE = 32  # image_size must divide by the trunk's deepest stride (32) and its first window (8 at S/4)


@dataclass(frozen=True)
class Sam2Config:
    """Everything needed to build a Sam2Model and to track with it. Widths (C, D) come from the sub-configs."""

    name: str
    image_encoder: ImageEncoderConfig
    mask_decoder: MaskDecoderConfig
    memory_attention: MemoryAttentionConfig
    memory_encoder: MemoryEncoderConfig
    image_size: int = 1024  # S: model input side; feature grid is S/16
    backbone_stride: int = 16  # stride of the image embedding the decoder and memory work on
    mask_in_chans: int = 16  # hidden channels of the prompt encoder's mask branch
    # --- memory bank
    num_maskmem: int = 7  # memory slots: the prompted frames share slot 0, plus the 6 previous frames
    # Prompted frames attended to: -1 = all (every Meta config). Meta's temporally-closest selection is not
    # implemented; the tracker bounds them with TrackerOptions.max_cond_frames instead.
    max_cond_frames_in_attn: int = -1
    memory_temporal_stride_for_eval: int = 1  # r: previous-frame memories taken every r frames
    directly_add_no_mem_embed: bool = True  # first prompted frame: add no_mem_embed (the only way implemented)
    sigmoid_scale_for_mem_enc: float = 20.0  # mask probabilities are scaled/biased before the memory encoder
    sigmoid_bias_for_mem_enc: float = -10.0
    binarize_mask_from_pts_for_mem_enc: bool = True  # point-prompted frames: threshold instead of sigmoid
    non_overlap_masks_for_mem_enc: bool = False  # top object per pixel before memory encoding: not implemented
    no_obj_embed_spatial: bool = True  # 2.1: a learned embedding added to memories of absent objects
    # --- object pointers
    use_obj_ptrs_in_encoder: bool = True  # memory attention also reads past object pointers
    max_obj_ptrs_in_encoder: int = 16  # prompted frames' pointers + up to 15 previous frames'
    add_tpos_enc_to_obj_ptrs: bool = True  # temporal sine encoding of a pointer's distance (2.1)
    proj_tpos_enc_in_obj_ptrs: bool = True  # ...computed at width C and projected to D (2.1)
    use_signed_tpos_enc_to_obj_ptrs: bool = True  # signed frame distance (2.1)
    only_obj_ptrs_in_the_past_for_eval: bool = True  # ignore pointers of prompted frames after this frame
    fixed_no_obj_ptr: bool = True  # absent object: the pointer is replaced (not offset) by no_obj_ptr
    soft_no_obj_ptr: bool = False  # mix no_obj_ptr by sigmoid(presence) instead of a hard 0/1
    use_mlp_for_obj_ptr_proj: bool = True  # output token -> pointer through a 3-layer MLP (else Linear)
    # --- prompting and outputs
    use_mask_input_as_output_without_sam: bool = True  # a mask prompt is taken as the output (the only way)
    multimask_output_in_sam: bool = True  # 3 candidates for ambiguous prompts...
    multimask_min_pt_num: int = 0  # ...with this many points (a box counts as two)...
    multimask_max_pt_num: int = 1
    multimask_output_for_tracking: bool = True  # ...also on tracked (non-prompted) frames
    # Holes up to this area filled in low-res masks: 0 = none. Meta's video predictor asks for 8 but fills them only
    # with its CUDA extension (skipped with a warning elsewhere); not implemented here.
    fill_hole_area: int = 0
    # EdgeTAM: compress each memory frame to the perceiver's latent tokens (None: memories stay h*w grids, SAM 2).
    spatial_perceiver: PerceiverConfig | None = None

    def __post_init__(self) -> None:
        c, d = self.hidden_dim, self.mem_dim
        checks = [
            (self.image_size % SIZE_MULTIPLE == 0 and self.image_size > 0,
             f"image_size={self.image_size} must be a positive multiple of {SIZE_MULTIPLE}"),
            (self.mask_decoder.transformer_dim == c, "mask_decoder.transformer_dim must equal the neck's d_model"),
            (self.memory_attention.d_model == c, "memory_attention.d_model must equal the neck's d_model"),
            (self.memory_attention.kv_dim == d, "memory_attention.kv_dim must equal memory_encoder.out_dim"),
            (self.memory_encoder.in_dim == c, "memory_encoder.in_dim must equal the neck's d_model"),
            (c % d == 0, f"hidden dim {c} must be a multiple of the memory dim {d} (pointer split)"),
            (tuple(self.memory_attention.feat_size) == (self.feat_size, self.feat_size),
             "memory_attention.feat_size must be image_size // backbone_stride (use with_image_size)"),
            *self._perceiver_checks(),
            (not self.proj_tpos_enc_in_obj_ptrs or self.add_tpos_enc_to_obj_ptrs,
             "proj_tpos_enc_in_obj_ptrs needs add_tpos_enc_to_obj_ptrs"),
            (not self.fixed_no_obj_ptr or (self.pred_obj_scores and self.use_obj_ptrs_in_encoder),
             "fixed_no_obj_ptr needs pred_obj_scores and use_obj_ptrs_in_encoder"),
            (self.num_maskmem >= 1, "num_maskmem must be >= 1"),
            (isinstance(self.memory_temporal_stride_for_eval, int) and self.memory_temporal_stride_for_eval >= 1,
             f"memory_temporal_stride_for_eval must be an int >= 1, got {self.memory_temporal_stride_for_eval!r}"),
            # Settings of Meta's SAM2Base this implementation does not have: refused rather than ignored.
            (self.max_cond_frames_in_attn == -1,
             f"max_cond_frames_in_attn={self.max_cond_frames_in_attn} is not implemented (only -1, all prompted "
             "frames); bound prompted frames with TrackerOptions.max_cond_frames"),
            (not self.non_overlap_masks_for_mem_enc, "non_overlap_masks_for_mem_enc=True is not implemented"),
            (self.fill_hole_area == 0, f"fill_hole_area={self.fill_hole_area} is not implemented (only 0: no hole "
             "filling, what Meta's video predictor does without its CUDA extension)"),
            (self.directly_add_no_mem_embed, "directly_add_no_mem_embed=False (attending to a no-memory token) is "
             "not implemented; no Meta config uses it"),
            (self.use_mask_input_as_output_without_sam, "use_mask_input_as_output_without_sam=False is not "
             "implemented; every Meta config takes a mask prompt as the output"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"config {self.name!r}: {message}")

    def _perceiver_checks(self) -> list[tuple[bool, str]]:
        """With a spatial perceiver: widths agree, memory attention reads its token layout, windows tile the grid."""
        p = self.spatial_perceiver
        attn = self.memory_attention
        if p is None:
            return [(attn.memory_grid is None, "memory_attention.memory_grid needs a spatial_perceiver")]
        side = p.grid_side
        return [
            (p.dim == self.mem_dim, "spatial_perceiver.dim must equal memory_encoder.out_dim"),
            (tuple(attn.memory_grid or ()) == (side, side) and attn.memory_unrotated == p.num_latents,
             f"memory_attention must read the perceiver's tokens: memory_grid=({side}, {side}), "
             f"memory_unrotated={p.num_latents}"),
            (self.feat_size % side == 0, f"image_size={self.image_size} must be a multiple of "
             f"{side * self.backbone_stride} (the perceiver's {side}x{side} windows tile the S/16 grid)"),
        ]

    # Settings that live in a sub-config (one source each), readable here under Meta's SAM2Base names.
    @property
    def hidden_dim(self) -> int:
        """C: width of image embeddings, prompt tokens and object pointers."""
        return self.image_encoder.neck.d_model

    @property
    def mem_dim(self) -> int:
        """D: width of memory tokens."""
        return self.memory_encoder.out_dim

    @property
    def memory_tokens(self) -> int:
        """Tokens one memory frame holds: h*w (SAM 2) or the perceiver's latents (EdgeTAM: 512)."""
        return self.memory_attention.memory_tokens((self.feat_size, self.feat_size))

    @property
    def feat_size(self) -> int:
        """h = w: side of the image embedding grid."""
        return self.image_size // self.backbone_stride

    @property
    def use_high_res_features_in_sam(self) -> bool:
        return self.mask_decoder.use_high_res_features

    @property
    def pred_obj_scores(self) -> bool:
        return self.mask_decoder.pred_obj_scores

    @property
    def pred_obj_scores_mlp(self) -> bool:
        return self.mask_decoder.pred_obj_scores_mlp

    @property
    def iou_prediction_use_sigmoid(self) -> bool:
        return self.mask_decoder.iou_prediction_use_sigmoid

    @property
    def use_multimask_token_for_obj_ptr(self) -> bool:
        return self.mask_decoder.use_multimask_token_for_obj_ptr

    def with_image_size(self, image_size: int) -> "Sam2Config":
        """The same model at another input size (a positive multiple of 32); weights are size-independent."""
        side = image_size // self.backbone_stride
        return replace(self, image_size=image_size,
                       memory_attention=replace(self.memory_attention, feat_size=(side, side)))

    def use_multimask(self, is_init_cond_frame: bool, num_points: int) -> bool:
        """Whether the decoder outputs 3 candidates for this prompt (Meta's _use_multimask); a box is 2 points."""
        return (self.multimask_output_in_sam and (is_init_cond_frame or self.multimask_output_for_tracking)
                and self.multimask_min_pt_num <= num_points <= self.multimask_max_pt_num)


def _meta_config(name: str, trunk: str, version: str) -> Sam2Config:
    """A Meta release: sizes differ only in the trunk; 2.0 lacks 2.1's spatial no-object embedding and pointer tpos."""
    v21 = version == "2.1"
    return Sam2Config(
        name=name, image_encoder=image_encoder_preset(trunk), mask_decoder=MaskDecoderConfig(),
        memory_attention=MemoryAttentionConfig(), memory_encoder=MemoryEncoderConfig(),
        no_obj_embed_spatial=v21, add_tpos_enc_to_obj_ptrs=v21, proj_tpos_enc_in_obj_ptrs=v21,
        use_signed_tpos_enc_to_obj_ptrs=v21)


def _micro_config() -> Sam2Config:
    """Not a Meta model: SAM 2.1 structure at ~0.85 M parameters for the demo and tests (weights trained here:
    models/sam2_micro.pt, see its MODEL_CARD)."""
    c, d, size = 64, 32, 256
    trunk = hiera_preset("micro")
    encoder = ImageEncoderConfig(
        trunk=trunk, neck=NeckConfig(backbone_channel_list=tuple(trunk.channel_list), d_model=c, num_pos_feats=c))
    return Sam2Config(
        name="sam2_micro", image_encoder=encoder, image_size=size,
        mask_decoder=MaskDecoderConfig(transformer_dim=c, transformer_num_heads=4, transformer_mlp_dim=256,
                                       iou_head_hidden_dim=64),
        memory_attention=MemoryAttentionConfig(d_model=c, kv_dim=d, num_layers=1, dim_feedforward=256,
                                               feat_size=(size // 16, size // 16)),
        memory_encoder=MemoryEncoderConfig(in_dim=c, out_dim=d))


def _edgetam_config() -> Sam2Config:
    """Meta's EdgeTAM (configs/edgetam.yaml of its release): SAM 2's prompt encoder, mask decoder and memory encoder;
    a RepViT-M1 trunk in the same FPN neck (channels 384/192/96/48); the spatial perceiver compressing every
    memory frame to 256 global + 256 grid tokens; 2 memory-attention layers whose cross-attention rotates keys on
    the perceiver's 16x16 grid (RoPEAttentionv2) while queries keep the S/16 grid.

    Flags that differ from SAM 2.1 (EdgeTAM follows SAM 2.0 there; its yaml sets or leaves them so):
    no_obj_embed_spatial False (no learned embedding for absent objects' memories: the checkpoint has no such key),
    add_tpos_enc_to_obj_ptrs False (object pointers carry no temporal encoding, hence no obj_ptr_tpos_proj and no
    signed distance). Everything else equals 2.1, including the video predictor's overrides (stability-based
    multimask fallback, binarised point-prompted masks for memory)."""
    trunk = RepVitConfig()
    encoder = ImageEncoderConfig(trunk=trunk, neck=NeckConfig(backbone_channel_list=tuple(trunk.channel_list)))
    perceiver = PerceiverConfig()
    side = perceiver.grid_side
    return Sam2Config(
        name="edgetam", image_encoder=encoder, mask_decoder=MaskDecoderConfig(),
        memory_attention=MemoryAttentionConfig(num_layers=2, memory_grid=(side, side),
                                               memory_unrotated=perceiver.num_latents),
        memory_encoder=MemoryEncoderConfig(), spatial_perceiver=perceiver,
        no_obj_embed_spatial=False, add_tpos_enc_to_obj_ptrs=False, proj_tpos_enc_in_obj_ptrs=False,
        use_signed_tpos_enc_to_obj_ptrs=False)


_TRUNKS = {"t": "tiny", "s": "small", "b+": "base_plus", "l": "large"}
CONFIGS: dict[str, Sam2Config] = {
    **{f"sam2.1_hiera_{k}": _meta_config(f"sam2.1_hiera_{k}", v, "2.1") for k, v in _TRUNKS.items()},
    **{f"sam2_hiera_{k}": _meta_config(f"sam2_hiera_{k}", v, "2.0") for k, v in _TRUNKS.items()},
    "sam2_micro": _micro_config(),
    "edgetam": _edgetam_config(),
}


def get_config(name: str | Sam2Config, image_size: int | None = None) -> Sam2Config:
    """A private copy of a registered config (or of a given one), optionally at another image size."""
    if isinstance(name, Sam2Config):
        config = copy.deepcopy(name)
    elif name in CONFIGS:
        config = copy.deepcopy(CONFIGS[name])
    else:
        raise ValueError(f"unknown SAM 2 config {name!r}; known: {', '.join(CONFIGS)}")
    return config if image_size is None else config.with_image_size(image_size)


__all__ = ["CONFIGS", "SIZE_MULTIPLE", "Sam2Config", "get_config"]
