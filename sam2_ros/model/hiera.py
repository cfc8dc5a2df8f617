"""Hiera trunk of the SAM 2 image encoder: windowed attention blocks in 4 stages, query pooling between stages.

Parameter names follow Meta's checkpoints under `image_encoder.trunk.` so released weights load strictly.
Features inside the trunk are channel-last, [B, H, W, C]; the stage outputs are returned channel-first.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLP


@dataclass(frozen=True)
class HieraConfig:
    """Shape of a Hiera trunk; field names are those of Meta's configs so presets read like them."""

    embed_dim: int = 96  # channels of stage 1 (patch embedding width)
    num_heads: int = 1  # attention heads in stage 1
    stages: tuple[int, ...] = (2, 3, 16, 3)  # blocks per stage
    global_att_blocks: tuple[int, ...] = (12, 16, 20)  # block indices that attend over the whole map
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (14, 14)  # background pos-embed grid, resized to the map
    window_spec: tuple[int, ...] = (8, 4, 14, 7)  # attention window side per stage (tokens)
    q_pool: int = 3  # number of stage transitions that halve the resolution by pooling queries
    q_stride: tuple[int, int] = (2, 2)  # pooling stride at those transitions
    dim_mul: float = 2.0  # channel multiplier at each stage transition
    head_mul: float = 2.0  # head-count multiplier at each stage transition
    mlp_ratio: float = 4.0  # MLP hidden width / block width
    drop_path_rate: float = 0.0  # stochastic depth (training only): Meta's field; only 0 is implemented
    return_interm_layers: bool = True  # return every stage's output, not only the last
    patch_kernel: int = 7  # patch embedding conv: kernel, stride, padding (stride = trunk's first downsampling)
    patch_stride: int = 4
    patch_padding: int = 3

    def __post_init__(self) -> None:
        if self.drop_path_rate != 0:
            raise ValueError(f"drop_path_rate={self.drop_path_rate} is not implemented (stochastic depth); use 0")

    @property
    def depth(self) -> int:
        """Total number of blocks."""
        return sum(self.stages)

    @property
    def stage_ends(self) -> list[int]:
        """Index of the last block of every stage."""
        return [sum(self.stages[: i + 1]) - 1 for i in range(len(self.stages))]

    @property
    def channel_list(self) -> list[int]:
        """Output channels per returned level, lowest resolution first (what the FPN neck expects)."""
        dims = [self.embed_dim]
        for _ in self.stages[1:]:
            dims.append(int(dims[-1] * self.dim_mul))
        return dims[::-1] if self.return_interm_layers else dims[-1:]


# Meta's image-encoder trunks (identical in the sam2 and sam2.1 configs).
HIERA_PRESETS: dict[str, HieraConfig] = {
    "tiny": HieraConfig(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2), global_att_blocks=(5, 7, 9),
                        window_pos_embed_bkg_spatial_size=(7, 7)),
    "small": HieraConfig(embed_dim=96, num_heads=1, stages=(1, 2, 11, 2), global_att_blocks=(7, 10, 13),
                         window_pos_embed_bkg_spatial_size=(7, 7)),
    "base_plus": HieraConfig(embed_dim=112, num_heads=2),  # Meta's defaults: (2, 3, 16, 3), 14x14 background
    "large": HieraConfig(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4), global_att_blocks=(23, 33, 43),
                         window_pos_embed_bkg_spatial_size=(7, 7), window_spec=(8, 4, 16, 8)),
    # Not a Meta model: a ~0.3 M-parameter trunk for fast tests and demos at image_size 256 (64x64 tokens).
    "micro": HieraConfig(embed_dim=16, num_heads=1, stages=(1, 1, 2, 1), global_att_blocks=(3,),
                         window_pos_embed_bkg_spatial_size=(4, 4), window_spec=(8, 4, 8, 8)),
}
HIERA_PRESETS.update({"t": HIERA_PRESETS["tiny"], "s": HIERA_PRESETS["small"], "b+": HIERA_PRESETS["base_plus"],
                      "l": HIERA_PRESETS["large"]})


def hiera_preset(name: str, **overrides) -> HieraConfig:
    """Preset by name ("tiny"/"t", "small"/"s", "base_plus"/"b+", "large"/"l", "micro"), fields optionally replaced."""
    if name not in HIERA_PRESETS:
        raise ValueError(f"unknown Hiera preset {name!r}; known: {sorted(HIERA_PRESETS)}")
    return replace(HIERA_PRESETS[name], **overrides)


def _to_windows(x: torch.Tensor, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """[B, H, W, C] -> ([B*nWin, size, size, C], padded (Hp, Wp)); pads bottom/right with zeros."""
    b, h, w, c = x.shape
    pad_h, pad_w = -h % size, -w % size
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.reshape(b, hp // size, size, wp // size, size, c).transpose(2, 3)  # [B, nh, nw, size, size, C]
    return x.reshape(-1, size, size, c), (hp, wp)


def _from_windows(windows: torch.Tensor, size: int, padded: tuple[int, int], out_hw: tuple[int, int]) -> torch.Tensor:
    """Inverse of _to_windows: [B*nWin, size, size, C] -> [B, H, W, C] with the padding cut off."""
    hp, wp = padded
    nh, nw = hp // size, wp // size
    c = windows.shape[-1]
    x = windows.reshape(-1, nh, nw, size, size, c).transpose(2, 3).reshape(-1, hp, wp, c)
    h, w = out_hw
    if hp > h or wp > w:
        x = x[:, :h, :w]
    return x


def _pool_channel_last(x: torch.Tensor, pool: nn.Module) -> torch.Tensor:
    """Apply a 2-D pooling layer to a channel-last map [B, H, W, C] -> [B, H', W', C]."""
    return pool(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class PooledAttention(nn.Module):
    """Self-attention over a (window of a) map whose queries may be max-pooled, shrinking the output map."""

    def __init__(self, dim: int, dim_out: int, num_heads: int, q_pool: nn.Module | None = None) -> None:
        super().__init__()
        if dim_out % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide dim_out={dim_out}")
        self.num_heads = num_heads
        self.q_pool = q_pool
        self.qkv = nn.Linear(dim, dim_out * 3)  # output laid out [3, heads, head_dim]
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, H, W, C] -> [B, H', W', C_out] with (H', W') = (H, W) / q stride when pooling."""
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1)  # [B, HW, 3, heads, c]
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, heads, HW, c]
        if self.q_pool is not None:
            # Pool queries spatially: [B, heads, HW, c] -> map [B, H, W, heads*c] -> pooled -> back.
            q_map = q.transpose(1, 2).reshape(b, h, w, -1)
            q_map = _pool_channel_last(q_map, self.q_pool)  # [B, H', W', heads*c]
            h, w = q_map.shape[1], q_map.shape[2]
            q = q_map.reshape(b, h * w, self.num_heads, -1).transpose(1, 2)  # [B, heads, H'W', c]
        out = F.scaled_dot_product_attention(q, k, v)  # [B, heads, H'W', c]
        out = out.transpose(1, 2).reshape(b, h, w, -1)  # [B, H', W', C_out]
        return self.proj(out)


class HieraBlock(nn.Module):
    """Pre-norm transformer block: (windowed, optionally query-pooled) attention, then an MLP."""

    def __init__(self, dim: int, dim_out: int, num_heads: int, window_size: int,
                 q_stride: tuple[int, int] | None = None, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.dim, self.dim_out = dim, dim_out
        self.window_size = window_size  # 0 = global attention
        self.q_stride = q_stride
        self.pool = nn.MaxPool2d(kernel_size=q_stride, stride=q_stride) if q_stride else None
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = PooledAttention(dim, dim_out, num_heads, q_pool=self.pool)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = MLP(dim_out, int(dim_out * mlp_ratio), dim_out, num_layers=2, activation=nn.GELU)
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)  # residual path at a width change

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, H, W, dim] -> [B, H', W', dim_out]."""
        normed = self.norm1(x)
        residual = x
        if self.dim != self.dim_out:
            residual = self.proj(normed)
            if self.pool is not None:
                residual = _pool_channel_last(residual, self.pool)
        out_hw = (residual.shape[1], residual.shape[2])  # size after (optional) pooling

        if self.window_size > 0:
            windows, _ = _to_windows(normed, self.window_size)
            attended = self.attn(windows)  # [B*nWin, ws', ws', dim_out]
            # Pooling shrinks each window; the padded grid of the output follows from the pooled size.
            out_ws = self.window_size // self.q_stride[0] if self.q_stride else self.window_size
            padded = (out_hw[0] + (-out_hw[0] % out_ws), out_hw[1] + (-out_hw[1] % out_ws))
            attended = _from_windows(attended, out_ws, padded, out_hw)
        else:
            attended = self.attn(normed)

        x = residual + attended
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """Strided conv from pixels to the first token map: [B, 3, S, S] -> [B, S/4, S/4, C] (channel-last)."""

    def __init__(self, embed_dim: int, kernel: int = 7, stride: int = 4, padding: int = 3, in_chans: int = 3) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=kernel, stride=stride, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class Hiera(nn.Module):
    """Hierarchical ViT trunk: patch embed + windowed pos embed + blocks; returns one feature map per stage."""

    def __init__(self, config: HieraConfig | None = None) -> None:
        super().__init__()
        cfg = config or HieraConfig()
        if len(cfg.stages) != len(cfg.window_spec):
            raise ValueError("stages and window_spec need one entry per stage")
        if not 0 <= cfg.q_pool < len(cfg.stages):
            raise ValueError(f"q_pool={cfg.q_pool} must be in [0, {len(cfg.stages) - 1}]")
        self.config = cfg
        self.stage_ends = cfg.stage_ends
        self.channel_list = cfg.channel_list
        pooled_blocks = [end + 1 for end in self.stage_ends[:-1]][: cfg.q_pool]  # first block of a pooled stage

        self.patch_embed = PatchEmbed(cfg.embed_dim, cfg.patch_kernel, cfg.patch_stride, cfg.patch_padding)
        # Absolute position embedding = a small background grid resized to the map + a tiled per-window pattern.
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.embed_dim, *cfg.window_pos_embed_bkg_spatial_size))
        win = cfg.window_spec[0]
        self.pos_embed_window = nn.Parameter(torch.zeros(1, cfg.embed_dim, win, win))

        self.blocks = nn.ModuleList()
        dim, heads, stage = cfg.embed_dim, cfg.num_heads, 0
        for i in range(cfg.depth):
            # The first block of a stage still windows at the previous stage's size (its input resolution).
            window = 0 if i in cfg.global_att_blocks else cfg.window_spec[stage]
            dim_out = dim
            if i - 1 in self.stage_ends:  # first block of stages 2..4 widens the features
                dim_out = int(dim * cfg.dim_mul)
                heads = int(heads * cfg.head_mul)
                stage += 1
            stride = cfg.q_stride if i in pooled_blocks else None
            self.blocks.append(HieraBlock(dim, dim_out, heads, window, stride, cfg.mlp_ratio))
            dim = dim_out

    def _position_embedding(self, h: int, w: int) -> torch.Tensor:
        """[1, h, w, C] absolute embedding for an h x w token map."""
        background = F.interpolate(self.pos_embed, size=(h, w), mode="bicubic")  # [1, C, h, w]
        win_h, win_w = self.pos_embed_window.shape[-2:]
        tiled = self.pos_embed_window.repeat(1, 1, -(-h // win_h), -(-w // win_w))[:, :, :h, :w]
        return (background + tiled).permute(0, 2, 3, 1)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """image [B, 3, S, S] -> stage maps, high to low resolution: [B, C_i, S/4/2^i, S/4/2^i]."""
        x = self.patch_embed(image)  # [B, S/4, S/4, C]
        x = x + self._position_embedding(x.shape[1], x.shape[2])
        outputs = []
        last = self.stage_ends[-1]
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == last or (self.config.return_interm_layers and i in self.stage_ends):
                outputs.append(x.permute(0, 3, 1, 2))  # [B, C_i, H_i, W_i]
        return outputs
