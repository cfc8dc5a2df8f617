"""SAM 2 mask decoder: output tokens + prompt tokens run through the two-way transformer, then hypernetwork masks.

Attribute names equal Meta's checkpoint keys under `sam_mask_decoder.` (`iou_token`, `mask_tokens`, `obj_score_token`,
`output_upscaling`, `conv_s0`, `conv_s1`, `output_hypernetworks_mlps`, `iou_prediction_head`, `pred_obj_score_head`,
`transformer.*`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sam2_ros.model.common import MLP, LayerNorm2d
from sam2_ros.model.transformer import TwoWayTransformer


@dataclass
class MaskDecoderConfig:
    """Mask decoder hyper-parameters; defaults are SAM 2 / 2.1 as Meta's video predictor builds them (all sizes)."""

    transformer_dim: int = 256  # C: width of tokens and image embedding
    num_multimask_outputs: int = 3  # candidate masks besides the single-mask token
    transformer_depth: int = 2  # two-way blocks
    transformer_num_heads: int = 8
    transformer_mlp_dim: int = 2048  # hidden width of the token MLP in each block
    attention_downsample_rate: int = 2  # cross-attention inner width = C / rate
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    use_high_res_features: bool = True  # stride-4/8 skip features (adds conv_s0, conv_s1)
    iou_prediction_use_sigmoid: bool = True  # IoU head ends in a sigmoid
    pred_obj_scores: bool = True  # object-presence token and head
    pred_obj_scores_mlp: bool = True  # presence head is a 3-layer MLP (else one Linear)
    use_multimask_token_for_obj_ptr: bool = True  # multimask call returns the 3 multimask tokens
    dynamic_multimask_via_stability: bool = True  # single-mask call falls back to best multimask if unstable
    dynamic_multimask_stability_delta: float = 0.05  # logit band for the stability score
    dynamic_multimask_stability_thresh: float = 0.98  # minimum stability to keep the single mask


def stability_score(mask_logits: torch.Tensor, delta: float) -> torch.Tensor:
    """IoU of the masks thresholded at +delta and -delta: [..., H, W] logits -> [...]; 1 for an empty union."""
    flat = mask_logits.flatten(-2)
    inner = (flat > delta).sum(-1).float()
    outer = (flat > -delta).sum(-1).float()
    return torch.where(outer > 0, inner / outer, torch.ones_like(outer))


def pick_per_batch(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values [B, M, ...], index [B] long -> values[b, index[b]] kept as [B, 1, ...] (gather, export-friendly)."""
    shape = (values.shape[0], 1) + tuple(values.shape[2:])
    idx = index.reshape((-1, 1) + (1,) * (values.dim() - 2)).expand(shape)
    return values.gather(1, idx)


class MaskDecoder(nn.Module):
    """Predicts mask logits, IoU estimates, output tokens and the object-presence logit from prompt embeddings."""

    def __init__(self, config: MaskDecoderConfig | None = None) -> None:
        super().__init__()
        cfg = config or MaskDecoderConfig()
        self.config = cfg
        dim = cfg.transformer_dim
        self.transformer_dim = dim
        self.num_multimask_outputs = cfg.num_multimask_outputs
        self.num_mask_tokens = cfg.num_multimask_outputs + 1  # token 0 = single-mask output
        self.pred_obj_scores = cfg.pred_obj_scores
        self.use_high_res_features = cfg.use_high_res_features
        self.use_multimask_token_for_obj_ptr = cfg.use_multimask_token_for_obj_ptr
        self.dynamic_multimask_via_stability = cfg.dynamic_multimask_via_stability
        self.dynamic_multimask_stability_delta = cfg.dynamic_multimask_stability_delta
        self.dynamic_multimask_stability_thresh = cfg.dynamic_multimask_stability_thresh

        self.transformer = TwoWayTransformer(depth=cfg.transformer_depth, embedding_dim=dim,
                                             num_heads=cfg.transformer_num_heads, mlp_dim=cfg.transformer_mlp_dim,
                                             attention_downsample_rate=cfg.attention_downsample_rate)
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, dim)
        if cfg.pred_obj_scores:
            self.obj_score_token = nn.Embedding(1, dim)

        # Indices 0..4 are part of the checkpoint keys (1 = LayerNorm2d; 2, 4 = GELU without parameters).
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        if cfg.use_high_res_features:
            # Applied by the image-encoding part to the backbone's stride-4 / stride-8 maps (Meta's forward_image).
            self.conv_s0 = nn.Conv2d(dim, dim // 8, kernel_size=1, stride=1)
            self.conv_s1 = nn.Conv2d(dim, dim // 4, kernel_size=1, stride=1)

        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens))
        self.iou_prediction_head = MLP(dim, cfg.iou_head_hidden_dim, self.num_mask_tokens, cfg.iou_head_depth,
                                       sigmoid_output=cfg.iou_prediction_use_sigmoid)
        if cfg.pred_obj_scores:
            self.pred_obj_score_head = MLP(dim, dim, 1, 3) if cfg.pred_obj_scores_mlp else nn.Linear(dim, 1)

    def _output_tokens(self, batch_like: torch.Tensor) -> torch.Tensor:
        """Learned output tokens [B, T, C]: (obj_score,) iou, mask_0..mask_M, batched like `batch_like` [B, ...]."""
        parts = [self.iou_token.weight, self.mask_tokens.weight]
        if self.pred_obj_scores:
            parts.insert(0, self.obj_score_token.weight)
        tokens = torch.cat(parts, dim=0)  # [T, C]
        return tokens.unsqueeze(0).expand(batch_like.shape[0], -1, -1)

    def _upscale(self, image: torch.Tensor, high_res_features: tuple[torch.Tensor, torch.Tensor] | None
                 ) -> torch.Tensor:
        """Transformer image tokens as a map [B, C, h, w] -> [B, C/8, 4h, 4w], adding skip features when configured."""
        up1, norm1, act1, up2, act2 = self.output_upscaling
        if not self.use_high_res_features:
            return act2(up2(act1(norm1(up1(image)))))
        if high_res_features is None:
            raise ValueError("this decoder uses high-res features: pass (feat_s0, feat_s1)")
        feat_s0, feat_s1 = high_res_features  # [B, C/8, 4h, 4w], [B, C/4, 2h, 2w]
        x = act1(norm1(up1(image) + feat_s1))
        return act2(up2(x) + feat_s0)

    def predict_all(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                    sparse_prompt_embeddings: torch.Tensor, dense_prompt_embeddings: torch.Tensor,
                    repeat_image: bool = False,
                    high_res_features: tuple[torch.Tensor, torch.Tensor] | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """All M+1 outputs before selection: masks [B, M+1, 4h, 4w], iou [B, M+1], tokens [B, M+1, C], obj [B, 1]."""
        out_tokens = self._output_tokens(sparse_prompt_embeddings)
        tokens = torch.cat([out_tokens, sparse_prompt_embeddings], dim=1)  # [B, T+N, C]
        batch = tokens.shape[0]
        if repeat_image:
            # One image shared by B prompt sets (the predictors' "many prompts, one image" use).
            image = image_embeddings.repeat_interleave(batch, dim=0)
        else:
            image = image_embeddings
        image = image + dense_prompt_embeddings  # [B, C, h, w]
        b, c, h, w = image.shape
        pos = image_pe.expand(b, -1, -1, -1)  # get_dense_pe() gives [1, C, h, w]

        hs, image_tokens = self.transformer(image, pos, tokens)  # [B, T+N, C], [B, hw, C]
        first = 1 if self.pred_obj_scores else 0
        iou_token_out = hs[:, first]  # [B, C]
        mask_tokens_out = hs[:, first + 1:first + 1 + self.num_mask_tokens]  # [B, M+1, C]

        image = image_tokens.transpose(1, 2).reshape(b, c, h, w)
        upscaled = self._upscale(image, high_res_features)  # [B, C/8, 4h, 4w]
        hyper = torch.stack([mlp(mask_tokens_out[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)],
                            dim=1)  # [B, M+1, C/8]
        _, c8, uh, uw = upscaled.shape
        masks = (hyper @ upscaled.reshape(b, c8, uh * uw)).reshape(b, -1, uh, uw)  # [B, M+1, 4h, 4w]

        iou = self.iou_prediction_head(iou_token_out)  # [B, M+1]
        if self.pred_obj_scores:
            object_score_logits = self.pred_obj_score_head(hs[:, 0])  # [B, 1]
        else:
            # Without a presence head the object is always present: logit 10 (sigmoid ~ 1).
            object_score_logits = torch.full_like(iou[:, :1], 10.0)
        return masks, iou, mask_tokens_out, object_score_logits

    def fallback_to_multimask(self, masks: torch.Tensor, iou: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Single-mask choice with fallback: keep mask 0 when stable, else the multimask with the best IoU.

        masks [B, M+1, H, W], iou [B, M+1] -> ([B, 1, H, W], [B, 1]). Branch-free (argmax/gather/where).
        """
        best = iou[:, 1:].argmax(dim=-1)  # [B]
        best_mask = pick_per_batch(masks[:, 1:], best)  # [B, 1, H, W]
        best_iou = pick_per_batch(iou[:, 1:], best)  # [B, 1]
        single_mask, single_iou = masks[:, :1], iou[:, :1]
        stable = stability_score(single_mask, self.dynamic_multimask_stability_delta) \
            >= self.dynamic_multimask_stability_thresh  # [B, 1]
        return (torch.where(stable[..., None, None], single_mask, best_mask),
                torch.where(stable, single_iou, best_iou))

    def forward(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                sparse_prompt_embeddings: torch.Tensor, dense_prompt_embeddings: torch.Tensor,
                multimask_output: bool, repeat_image: bool = False,
                high_res_features: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decode masks the way Meta's MaskDecoder.forward does.

        Inputs: image_embeddings [B, C, h, w] (or [1, C, h, w] with repeat_image), image_pe [1, C, h, w],
        sparse_prompt_embeddings [B, N, C], dense_prompt_embeddings [B, C, h, w],
        high_res_features (feat_s0 [B, C/8, 4h, 4w], feat_s1 [B, C/4, 2h, 2w]) already through conv_s0 / conv_s1.
        Returns: masks [B, M, 4h, 4w] logits (M = 3 multimask, else 1), iou [B, M],
        sam_tokens_out [B, 3, C] (multimask with use_multimask_token_for_obj_ptr) else [B, 1, C] (token 0),
        object_score_logits [B, 1].
        """
        masks, iou, mask_tokens_out, object_score_logits = self.predict_all(
            image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings, repeat_image,
            high_res_features)
        if multimask_output:
            masks, iou = masks[:, 1:], iou[:, 1:]
        elif self.dynamic_multimask_via_stability and not self.training:
            masks, iou = self.fallback_to_multimask(masks, iou)
        else:
            masks, iou = masks[:, :1], iou[:, :1]
        if multimask_output and self.use_multimask_token_for_obj_ptr:
            sam_tokens_out = mask_tokens_out[:, 1:]  # [B, 3, C]
        else:
            # Token 0 (single-mask) is the object-pointer token otherwise, as in training.
            sam_tokens_out = mask_tokens_out[:, :1]  # [B, 1, C]
        return masks, iou, sam_tokens_out, object_score_logits
