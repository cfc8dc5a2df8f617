"""SAM 2 image encoder: Hiera trunk + FPN neck, giving three feature levels with their sine position maps.

Parameter names follow Meta's checkpoints under `image_encoder.` (`trunk.*`, `neck.convs.{i}.conv.*`).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .hiera import Hiera, HieraConfig, hiera_preset
from .position_encoding import PositionEmbeddingSine
from .repvit import RepVit, RepVitConfig


@dataclass(frozen=True)
class NeckConfig:
    """FPN neck settings, named as in Meta's configs."""

    backbone_channel_list: tuple[int, ...] = (768, 384, 192, 96)  # trunk channels, lowest resolution first
    d_model: int = 256  # output channels of every level
    fpn_top_down_levels: tuple[int, ...] = (2, 3)  # levels (0 = highest res) that add the upsampled coarser level
    fpn_interp_model: str = "nearest"  # upsampling mode of the top-down path
    fuse_type: str = "sum"  # "sum" or "avg" of lateral and top-down features
    kernel_size: int = 1  # lateral conv
    stride: int = 1
    padding: int = 0
    num_pos_feats: int = 256  # channels of the sine position maps (= d_model in every Meta config)
    pos_temperature: float = 10000
    pos_normalize: bool = True
    pos_scale: float | None = None


@dataclass(frozen=True)
class ImageEncoderConfig:
    """Trunk + neck + how many lowest-resolution levels to drop (Meta's `scalp`)."""

    trunk: HieraConfig | RepVitConfig = field(default_factory=lambda: hiera_preset("tiny"))  # RepViT: EdgeTAM
    neck: NeckConfig = field(default_factory=NeckConfig)
    scalp: int = 1


def image_encoder_preset(name: str, d_model: int = 256) -> ImageEncoderConfig:
    """Encoder config for a trunk preset ("tiny"/"t", "small"/"s", "base_plus"/"b+", "large"/"l", "micro")."""
    trunk = hiera_preset(name)
    neck = NeckConfig(backbone_channel_list=tuple(trunk.channel_list), d_model=d_model, num_pos_feats=d_model)
    return ImageEncoderConfig(trunk=trunk, neck=neck, scalp=1)


class FpnNeck(nn.Module):
    """Feature pyramid: 1x1 lateral convs to d_model, top-down fusion on the chosen levels, a pos map per level."""

    def __init__(self, config: NeckConfig | None = None) -> None:
        super().__init__()
        cfg = config or NeckConfig()
        if cfg.fuse_type not in ("sum", "avg"):
            raise ValueError(f"fuse_type must be 'sum' or 'avg', got {cfg.fuse_type!r}")
        self.config = cfg
        self.backbone_channel_list = list(cfg.backbone_channel_list)
        self.d_model = cfg.d_model
        self.position_encoding = PositionEmbeddingSine(cfg.num_pos_feats, cfg.pos_temperature, cfg.pos_normalize,
                                                       cfg.pos_scale)
        # convs[j] handles the j-th trunk level counted from the LOWEST resolution (checkpoint order).
        self.convs = nn.ModuleList(
            nn.Sequential(OrderedDict(conv=nn.Conv2d(c, cfg.d_model, cfg.kernel_size, cfg.stride, cfg.padding)))
            for c in cfg.backbone_channel_list
        )
        self.top_down_levels = set(cfg.fpn_top_down_levels)

    def _upsample(self, coarse: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Resize the coarser level to the finer level's size (2x in every SAM 2 config)."""
        mode = self.config.fpn_interp_model
        align = None if mode in ("nearest", "area", "nearest-exact") else False
        return F.interpolate(coarse, size=like.shape[-2:], mode=mode, align_corners=align)

    def forward(self, levels: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Trunk maps high->low res [B, C_i, H_i, W_i] -> (features [B, d, H_i, W_i], pos [B, d, H_i, W_i]), same order."""
        if len(levels) != len(self.convs):
            raise ValueError(f"neck expects {len(self.convs)} trunk levels, got {len(levels)}")
        n = len(levels)
        features: list[torch.Tensor] = []  # filled low -> high res, reversed at the end
        coarser: torch.Tensor | None = None
        for level in range(n - 1, -1, -1):
            lateral = self.convs[n - 1 - level](levels[level])  # [B, d, H_l, W_l]
            if coarser is not None and level in self.top_down_levels:
                fused = lateral + self._upsample(coarser, lateral)
                coarser = fused / 2 if self.config.fuse_type == "avg" else fused
            else:
                coarser = lateral
            features.append(coarser)
        features.reverse()
        pos = [self.position_encoding(f).to(f.dtype) for f in features]
        return features, pos


class ImageEncoder(nn.Module):
    """Trunk + neck; drops the `scalp` lowest-resolution levels (SAM 2 keeps S/4, S/8, S/16)."""

    def __init__(self, trunk: Hiera | RepVit, neck: FpnNeck, scalp: int = 1) -> None:
        super().__init__()
        if list(trunk.channel_list) != list(neck.backbone_channel_list):
            raise ValueError(f"trunk channels {trunk.channel_list} != neck channels {neck.backbone_channel_list}")
        if not 0 <= scalp < len(trunk.channel_list):
            raise ValueError(f"scalp={scalp} must leave at least one level")
        self.trunk = trunk
        self.neck = neck
        self.scalp = scalp

    @classmethod
    def from_config(cls, config: ImageEncoderConfig) -> "ImageEncoder":
        """Build trunk and neck from one config."""
        trunk = RepVit(config.trunk) if isinstance(config.trunk, RepVitConfig) else Hiera(config.trunk)
        return cls(trunk, FpnNeck(config.neck), config.scalp)

    def forward(self, image: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """image [B, 3, S, S] normalised -> (features, pos): lists high->low res, [B, d, S/4], [B, d, S/8], [B, d, S/16]."""
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be [B, 3, S, S], got {tuple(image.shape)}")
        levels = self.trunk(image)
        keep = len(levels) - self.scalp
        # The full pyramid is needed (the S/16 level fuses the S/32 one); the dropped levels are cut afterwards.
        features, pos = self.neck(levels)
        return features[:keep], pos[:keep]
