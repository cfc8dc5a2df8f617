"""RepViT (Wang et al., CVPR 2024), the trunk of EdgeTAM's image encoder, in plain PyTorch (no timm at run time).

EdgeTAM builds it as timm's `repvit_m1.dist_in1k` with `features_only=True` (the classifier head dropped) and keeps
it under `image_encoder.trunk.body.*`; the module names here reproduce timm's flattened feature-extractor names
(`stem.*`, `stages_0.*` .. `stages_3.*`, `ConvNorm` = `c` conv + `bn` BatchNorm), so EdgeTAM's checkpoint loads
strictly. The training-time branches (3x3 depthwise + 1x1 depthwise + identity, each with its own BatchNorm) are
kept unfused: they are what the checkpoint holds, and the outputs stay the reference's to float rounding.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class RepVitConfig:
    """Sizes of a RepViT trunk (defaults: RepViT-M1 as EdgeTAM uses it)."""

    embed_dim: tuple[int, ...] = (48, 96, 192, 384)  # channels per stage (stride 4, 8, 16, 32)
    depth: tuple[int, ...] = (2, 2, 14, 2)  # blocks per stage after its downsampling
    mlp_ratio: int = 2  # channel-mixer hidden width = mlp_ratio * channels
    kernel_size: int = 3  # depthwise token-mixer kernel

    @property
    def channel_list(self) -> list[int]:
        """Output channels, lowest resolution first (what the FPN neck's backbone_channel_list lists)."""
        return list(self.embed_dim[::-1])


def _se_width(channels: int, ratio: float = 0.25, divisor: int = 8) -> int:
    """Squeeze-excite hidden width: channels*ratio rounded to the nearest multiple of 8 (at least 8)."""
    return max(divisor, int(channels * ratio + divisor / 2) // divisor * divisor)


class ConvNorm(nn.Sequential):
    """Conv2d without bias + BatchNorm2d (keys `c.*`, `bn.*`)."""

    def __init__(self, in_dim: int, out_dim: int, kernel_size: int = 1, stride: int = 1, padding: int = 0,
                 groups: int = 1) -> None:
        super().__init__()
        self.c = nn.Conv2d(in_dim, out_dim, kernel_size, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_dim)


class DepthwiseMixer(nn.Module):
    """Token mixer: BN'd 3x3 depthwise conv + BN'd 1x1 depthwise conv + identity (`token_mixer.conv`, `.conv1`)."""

    def __init__(self, dim: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = ConvNorm(dim, dim, kernel_size, 1, (kernel_size - 1) // 2, groups=dim)
        self.conv1 = ConvNorm(dim, dim, 1, 1, 0, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.conv1(x) + x


class SqueezeExcite(nn.Module):
    """Channel gate: global mean -> 1x1 conv -> ReLU -> 1x1 conv -> sigmoid, times the input (`se.fc1`, `se.fc2`)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        hidden = _se_width(dim)
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True))))  # [B, C, 1, 1]
        return x * torch.sigmoid(gate)


class ChannelMlp(nn.Module):
    """1x1 ConvNorm -> GELU -> 1x1 ConvNorm (`conv1`, `conv2`)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.conv1 = ConvNorm(dim, hidden)
        self.act = nn.GELU()
        self.conv2 = ConvNorm(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.act(self.conv1(x)))


class RepVitBlock(nn.Module):
    """Token mixer, optional squeeze-excite, then a residual channel MLP."""

    def __init__(self, dim: int, mlp_ratio: int, kernel_size: int, use_se: bool) -> None:
        super().__init__()
        self.token_mixer = DepthwiseMixer(dim, kernel_size)
        self.se = SqueezeExcite(dim) if use_se else nn.Identity()
        self.channel_mixer = ChannelMlp(dim, dim * mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.se(self.token_mixer(x))
        return x + self.channel_mixer(x)


class Downsample(nn.Module):
    """Stride-2 stage entry: a block, a stride-2 depthwise ConvNorm, a 1x1 ConvNorm to the new width, a residual MLP."""

    def __init__(self, in_dim: int, out_dim: int, mlp_ratio: int, kernel_size: int) -> None:
        super().__init__()
        self.pre_block = RepVitBlock(in_dim, mlp_ratio, kernel_size, use_se=False)
        self.spatial_downsample = ConvNorm(in_dim, in_dim, kernel_size, 2, (kernel_size - 1) // 2, groups=in_dim)
        self.channel_downsample = ConvNorm(in_dim, out_dim)
        self.ffn = ChannelMlp(out_dim, out_dim * mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.channel_downsample(self.spatial_downsample(self.pre_block(x)))
        return x + self.ffn(x)


class Stage(nn.Module):
    """Optional downsampling, then `depth` blocks with squeeze-excite on every other one (first, third, ...)."""

    def __init__(self, in_dim: int, out_dim: int, depth: int, mlp_ratio: int, kernel_size: int,
                 downsample: bool) -> None:
        super().__init__()
        if not downsample and in_dim != out_dim:
            raise ValueError(f"a stage without downsampling keeps its width ({in_dim} != {out_dim})")
        self.downsample = Downsample(in_dim, out_dim, mlp_ratio, kernel_size) if downsample else nn.Identity()
        self.blocks = nn.Sequential(*(RepVitBlock(out_dim, mlp_ratio, kernel_size, use_se=i % 2 == 0)
                                      for i in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class RepVitBody(nn.Module):
    """Stem (two stride-2 3x3 ConvNorms, GELU between) and the stages; returns every stage's output."""

    def __init__(self, config: RepVitConfig) -> None:
        super().__init__()
        first = config.embed_dim[0]
        self.stem = nn.Sequential()
        self.stem.add_module("conv1", ConvNorm(3, first // 2, 3, 2, 1))
        self.stem.add_module("act1", nn.GELU())
        self.stem.add_module("conv2", ConvNorm(first // 2, first, 3, 2, 1))
        in_dim = first
        for i, (dim, depth) in enumerate(zip(config.embed_dim, config.depth)):
            self.add_module(f"stages_{i}", Stage(in_dim, dim, depth, config.mlp_ratio, config.kernel_size, i > 0))
            in_dim = dim
        self.num_stages = len(config.embed_dim)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[B, 3, S, S] -> [B, 48, S/4], [B, 96, S/8], [B, 192, S/16], [B, 384, S/32] (M1), high res first."""
        x = self.stem(x)
        levels = []
        for i in range(self.num_stages):
            x = getattr(self, f"stages_{i}")(x)
            levels.append(x)
        return levels


class RepVit(nn.Module):
    """EdgeTAM's trunk: the body under `body.*` (timm's feature extractor held by Meta's TimmBackbone)."""

    def __init__(self, config: RepVitConfig | None = None) -> None:
        super().__init__()
        self.config = config or RepVitConfig()
        self.body = RepVitBody(self.config)
        self.channel_list = self.config.channel_list

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Image [B, 3, S, S] -> feature maps, highest resolution first (as Hiera's)."""
        return self.body(x)
