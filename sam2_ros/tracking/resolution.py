"""Low-resolution masks for links where full-size masks cost too much: the decoder's own s x s logits grid
(s = image_size / 4, the image squeezed square) resized to the source aspect ratio, at most `max_side` pixels on the
long side. Computed from the grid directly (TrackResult.low_res_logits), without full-size upsampling: a low pixel is
on where the mask covers most of it, the coverage being counted on a k times finer grid (k <= SUPERSAMPLE, at most
FINE_SIDE on the long side), so the masks agree with the full-resolution masks downsampled by area; grids already
that fine are resized directly (antialiased bilinear).

    low = low_res_masks(result.low_res_logits, (H, W))   # low.masks (N, h, w) bool, low.scale = w / W
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

MAX_SIDE = 256  # long side of low-resolution masks, pixels
SUPERSAMPLE = 4  # coverage of a low pixel is counted on up to 4 x 4 samples...
FINE_SIDE = 256  # ...on a grid of at most this many pixels on the long side (bounds the cost)


@dataclass
class LowResMasks:
    """Masks at low resolution: pixel (u, v) covers source pixels around (u / scale, v / scale)."""

    masks: np.ndarray  # (N, h, w) bool
    scale: float  # mask pixels per source pixel: w = round(W * scale), h = round(H * scale)

    @property
    def size(self) -> tuple[int, int]:
        """(h, w) of the masks."""
        return int(self.masks.shape[-2]), int(self.masks.shape[-1])


def low_res_size(size: tuple[int, int], grid: int, max_side: int = MAX_SIDE) -> tuple[int, int, float]:
    """(h, w, scale) of low-resolution masks for a source of `size` (H, W) from a decoder grid of side `grid`.

    The long side is min(grid, max_side, source long side): never finer than the decoder saw nor than the source.
    """
    height, width = _check_size(size)
    for value, name in ((grid, "grid"), (max_side, "max_side")):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    long_side = max(height, width)
    scale = min(int(grid), int(max_side), long_side) / long_side
    return max(1, round(height * scale)), max(1, round(width * scale)), scale


def low_res_masks(logits: np.ndarray | torch.Tensor, size: tuple[int, int], max_side: int = MAX_SIDE) -> LowResMasks:
    """Decoder-grid logits (N, s, s) of a source image of `size` (H, W) -> LowResMasks (see low_res_size).

    The logits are resized bilinearly (as for full-resolution masks) to k*h x k*w, thresholded at 0, and a low pixel
    is on where more than half of its k x k samples are (exactly half: where their mean logit is positive);
    k = min(SUPERSAMPLE, H / h, W / w, FINE_SIDE / long side).
    """
    grid = torch.as_tensor(logits)
    if grid.ndim != 3 or grid.shape[-1] != grid.shape[-2] or grid.shape[-1] == 0:
        raise ValueError(f"logits must be the decoder's square grid (N, s, s), got {tuple(grid.shape)}")
    h, w, scale = low_res_size(size, int(grid.shape[-1]), max_side)
    if grid.shape[0] == 0:
        return LowResMasks(np.zeros((0, h, w), bool), scale)
    k = max(1, min(SUPERSAMPLE, int(size[0]) // h, int(size[1]) // w, FINE_SIDE // max(h, w)))
    grid = grid.float()[:, None].cpu()  # [N, 1, s, s]
    if k == 1:
        low = F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        return LowResMasks(low[:, 0].numpy() > 0, scale)
    fine = F.interpolate(grid, size=(k * h, k * w), mode="bilinear", align_corners=False)[:, 0]  # [N, kh, kw]
    blocks = [fine[:, i::k, j::k] for i in range(k) for j in range(k)]  # k*k samples of each low pixel
    count = sum((b > 0).float() for b in blocks)  # [N, h, w]
    half = k * k / 2
    masks = (count > half) | ((count == half) & (sum(blocks) > 0))
    return LowResMasks(masks.numpy(), scale)


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError) as err:
        raise ValueError(f"size must be (H, W), got {size!r}") from err
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    return height, width
