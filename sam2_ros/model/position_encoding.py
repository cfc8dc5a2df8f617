"""Position encodings: 2-D sine maps for image features, random Fourier features for prompts, 1-D sine for time."""
from __future__ import annotations

import math

import torch
from torch import nn


def _sine_frequencies(num_feats: int, temperature: float, device: torch.device) -> torch.Tensor:
    """Wavelengths for `num_feats` interleaved sin/cos channels; channel pairs (2k, 2k+1) share T^(2k/num_feats)."""
    even = torch.arange(0, num_feats, 2, dtype=torch.float32, device=device)  # [num_feats/2]
    return temperature ** (even / num_feats)


def _interleave_sin_cos(angles: torch.Tensor) -> torch.Tensor:
    """[..., K] angles -> [..., 2K] laid out sin(a0), cos(a0), sin(a1), cos(a1), ..."""
    return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)


class PositionEmbeddingSine(nn.Module):
    """Fixed 2-D sine/cosine map for a feature map: half the channels encode y, half x (DETR style)."""

    def __init__(self, num_pos_feats: int, temperature: float = 10000, normalize: bool = True,
                 scale: float | None = None) -> None:
        super().__init__()
        if num_pos_feats % 4:
            raise ValueError(f"num_pos_feats={num_pos_feats} must be a multiple of 4 (sin/cos pairs for y and x)")
        if scale is not None and not normalize:
            raise ValueError("scale is only used with normalize=True")
        self.num_pos_feats = num_pos_feats // 2  # channels per axis
        self.temperature = temperature
        self.normalize = normalize
        self.scale = 2 * math.pi if scale is None else scale
        # Maps depend only on (H, W, device, dtype); eager calls reuse them. Never used while tracing/exporting.
        self._cache: dict[tuple, torch.Tensor] = {}

    def _encode(self, like: torch.Tensor) -> torch.Tensor:
        """[1, C, H, W] map for the spatial size of `like` ([B, *, H, W])."""
        # Positions 1..H / 1..W from a cumulative sum, so H and W stay graph dimensions in an export.
        ones = torch.ones_like(like[:1, :1], dtype=torch.float32)  # [1, 1, H, W]
        y = ones.cumsum(2)
        x = ones.cumsum(3)
        if self.normalize:
            eps = 1e-6
            y = y / (y[:, :, -1:, :] + eps) * self.scale
            x = x / (x[:, :, :, -1:] + eps) * self.scale
        freqs = _sine_frequencies(self.num_pos_feats, self.temperature, like.device)  # [F/2]
        pos_y = _interleave_sin_cos(y[..., None] / freqs)  # [1, 1, H, W, F]
        pos_x = _interleave_sin_cos(x[..., None] / freqs)
        pos = torch.cat((pos_y, pos_x), dim=-1)[:, 0]  # [1, H, W, 2F]
        return pos.permute(0, 3, 1, 2).to(like.dtype)  # [1, C, H, W]

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encoding for feature map x [B, *, H, W] -> [B, C, H, W] (an expanded view: treat as read-only)."""
        exporting = torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()
        if exporting:
            pos = self._encode(x)
        else:
            key = (x.shape[-2], x.shape[-1], x.device, x.dtype)
            pos = self._cache.get(key)
            if pos is None:
                pos = self._cache[key] = self._encode(x)
        return pos.expand(x.shape[0], -1, -1, -1)


class PositionEmbeddingRandom(nn.Module):
    """Random Fourier features of normalised (x, y) positions, used by the prompt encoder."""

    def __init__(self, num_pos_feats: int = 64, scale: float | None = None) -> None:
        super().__init__()
        scale = 1.0 if scale is None or scale <= 0.0 else scale
        # [2, F] projection of (x, y) onto random frequencies; name matches the checkpoints.
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.randn((2, num_pos_feats)))
        self._extents: dict[tuple, torch.Tensor] = {}  # (W, H, device) -> [2] divisor; no state-dict keys

    def _fourier(self, coords01: torch.Tensor) -> torch.Tensor:
        """[..., 2] positions in [0, 1] -> [..., 2F] (sin block, then cos block)."""
        centred = 2 * coords01 - 1
        angles = 2 * math.pi * (centred @ self.positional_encoding_gaussian_matrix)  # [..., F]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """Encoding of every cell centre of an (h, w) grid -> [2F, h, w]."""
        h, w = size
        ones = torch.ones((h, w), dtype=torch.float32, device=self.positional_encoding_gaussian_matrix.device)
        y = (ones.cumsum(0) - 0.5) / h  # cell centres in (0, 1)
        x = (ones.cumsum(1) - 0.5) / w
        return self._fourier(torch.stack([x, y], dim=-1)).permute(2, 0, 1)  # [C, h, w]

    def encode_grid(self, size: tuple[int, int]) -> torch.Tensor:
        """Alias of forward: [2F, h, w] grid encoding."""
        return self.forward(size)

    def forward_with_coords(self, coords: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """Pixel coordinates [B, N, 2] (x, y) in an image of size (H, W) -> [B, N, 2F]."""
        height, width = image_size
        coords = coords.to(torch.float32)
        # Divide x by W and y by H without slice assignment (required by the ONNX export); the divisor is made once
        # per size and device (a new tensor per decode would be a host -> device copy every time).
        key = (float(width), float(height), coords.device)
        extent = self._extents.get(key)
        if extent is None:
            extent = torch.tensor([width, height], dtype=torch.float32).to(coords.device)
            if not (torch.jit.is_tracing() or torch.compiler.is_compiling()):
                self._extents[key] = extent
        return self._fourier(coords / extent)

    encode_points = forward_with_coords


def get_1d_sine_pe(pos: torch.Tensor, dim: int, temperature: float = 10000) -> torch.Tensor:
    """Transformer-style 1-D encoding of positions [...] -> [..., dim] (sin block, then cos block)."""
    half = dim // 2
    idx = torch.arange(half, dtype=torch.float32, device=pos.device)
    wavelengths = temperature ** (2 * torch.div(idx, 2, rounding_mode="floor") / half)  # [dim/2]
    angles = pos.unsqueeze(-1) / wavelengths
    return torch.cat([angles.sin(), angles.cos()], dim=-1)
