"""Memory encoder: fuses a frame's image features with its predicted mask into a compact memory (+ its position map).

Parameter names follow Meta's checkpoints (`memory_encoder.` prefix): `mask_downsampler.encoder.*`, `pix_feat_proj`,
`fuser.layers.{i}.*` (ConvNeXt blocks), `out_proj`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .common import LayerNorm2d
from .position_encoding import PositionEmbeddingSine


@dataclass
class MemoryEncoderConfig:
    """Sizes of the memory encoder (defaults: every SAM 2 / 2.1 size)."""

    in_dim: int = 256  # channels of the image features (C)
    out_dim: int = 64  # channels of the stored memory (D); equal to in_dim means no out_proj
    mask_kernel_size: int = 3
    mask_stride: int = 2  # per downsampling conv
    mask_padding: int = 1
    mask_total_stride: int = 16  # mask size / feature size
    fuser_layers: int = 2
    fuser_kernel_size: int = 7
    fuser_padding: int = 3
    layer_scale_init: float = 1e-6  # initial `gamma` of each ConvNeXt block
    pos_temperature: float = 10000.0


class MaskDownSampler(nn.Module):
    """Strided convs (each + LayerNorm2d + GELU) shrink a [B,1,S,S] mask to the feature grid, then a 1x1 conv to C."""

    def __init__(self, embed_dim: int, kernel_size: int, stride: int, padding: int, total_stride: int) -> None:
        super().__init__()
        num_convs = round(math.log(total_stride, stride))
        if stride ** num_convs != total_stride:
            raise ValueError(f"total_stride={total_stride} is not a power of stride={stride}")
        stages: list[nn.Module] = []
        channels = 1
        for _ in range(num_convs):
            wider = channels * stride * stride  # keep the element count as the map shrinks
            stages += [nn.Conv2d(channels, wider, kernel_size, stride=stride, padding=padding),
                       LayerNorm2d(wider), nn.GELU()]
            channels = wider
        stages.append(nn.Conv2d(channels, embed_dim, kernel_size=1))
        self.encoder = nn.Sequential(*stages)  # indices match the checkpoints (GELUs hold no weights)

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        """[B, 1, S, S] -> [B, C, S/total_stride, S/total_stride]."""
        return self.encoder(mask)


class CXBlock(nn.Module):
    """ConvNeXt block: depthwise conv, channel LayerNorm, pointwise MLP (as Linear layers), layer scale, residual."""

    def __init__(self, dim: int, kernel_size: int, padding: int, layer_scale_init: float) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=padding, groups=dim)
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale_init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, h, w] -> [B, C, h, w]."""
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)  # [B, h, w, C]
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(y)))
        return x + y.permute(0, 3, 1, 2)


class Fuser(nn.Module):
    """A few ConvNeXt blocks that mix mask and image information."""

    def __init__(self, dim: int, num_layers: int, kernel_size: int, padding: int, layer_scale_init: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CXBlock(dim, kernel_size, padding, layer_scale_init) for _ in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    """Turns (image features, mask) of one frame into the memory later frames attend to."""

    def __init__(self, config: MemoryEncoderConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or MemoryEncoderConfig()
        self.mask_downsampler = MaskDownSampler(c.in_dim, c.mask_kernel_size, c.mask_stride, c.mask_padding,
                                                c.mask_total_stride)
        self.pix_feat_proj = nn.Conv2d(c.in_dim, c.in_dim, kernel_size=1)
        self.fuser = Fuser(c.in_dim, c.fuser_layers, c.fuser_kernel_size, c.fuser_padding, c.layer_scale_init)
        self.out_proj = nn.Conv2d(c.in_dim, c.out_dim, kernel_size=1) if c.out_dim != c.in_dim else nn.Identity()
        self.position_encoding = PositionEmbeddingSine(c.out_dim, temperature=c.pos_temperature, normalize=True)

    def forward(self, pix_feat: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pix_feat [B, C, h, w], masks [B, 1, S, S] (sigmoided, scaled) -> (features, pos), each [B, D, h, w]."""
        stride = self.config.mask_total_stride
        if not torch.jit.is_tracing() and masks.shape[-2] != pix_feat.shape[-2] * stride:  # symbolic when exporting
            raise ValueError(f"mask size {tuple(masks.shape[-2:])} is not {stride}x the "
                             f"feature size {tuple(pix_feat.shape[-2:])}")
        x = self.pix_feat_proj(pix_feat) + self.mask_downsampler(masks)  # [B, C, h, w]
        x = self.out_proj(self.fuser(x))  # [B, D, h, w]
        pos = self.position_encoding(x).to(x.dtype)  # [B, D, h, w]
        return x, pos
