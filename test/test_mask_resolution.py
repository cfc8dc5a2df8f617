"""Low-resolution masks from the decoder's own logits grid (sam2_ros.tracking.resolution): sizes, scale, and
agreement with the full-resolution masks downsampled, on masks the shipped micro model tracks on the demo scene."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sam2_ros.model import build_sam2
from sam2_ros.model.sam2 import postprocess_masks
from sam2_ros.sim import SyntheticScene, jaccard
from sam2_ros.tracking import StreamingTracker
from sam2_ros.tracking.resolution import MAX_SIDE, low_res_masks, low_res_size

CHECKPOINT = Path(__file__).resolve().parents[1] / "models" / "sam2_micro.pt"


def test_sizes_and_scale():
    assert MAX_SIDE == 256
    assert low_res_size((480, 640), 64) == (48, 64, 0.1)  # micro at 256: the 64 x 64 grid
    assert low_res_size((480, 640), 256) == (192, 256, 0.4)  # Meta's models at 1024
    assert low_res_size((480, 640), 256, max_side=128) == (96, 128, 0.2)
    assert low_res_size((640, 480), 128) == (128, 96, 0.2)  # portrait
    assert low_res_size((100, 120), 256) == (100, 120, 1.0)  # never larger than the source
    h, w, scale = low_res_size((1080, 1920), 256)
    assert (h, w) == (144, 256) and scale == pytest.approx(256 / 1920)
    for bad in [dict(size=(0, 10), grid=64), dict(size=(10,), grid=64), dict(size=(10, 10), grid=0),
                dict(size=(10, 10), grid=64, max_side=0), dict(size=(10, 10), grid=64, max_side=True)]:
        with pytest.raises(ValueError):
            low_res_size(**bad)
    with pytest.raises(ValueError, match="square grid"):
        low_res_masks(np.zeros((2, 64, 32), np.float32), (480, 640))
    empty = low_res_masks(np.zeros((0, 64, 64), np.float32), (480, 640))
    assert empty.masks.shape == (0, 48, 64) and empty.scale == 0.1


def downsample(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Full-resolution masks [N, H, W] -> [N, h, w]: a low pixel is on where most of its area is."""
    area = F.interpolate(torch.from_numpy(masks.astype(np.float32))[:, None], size=size, mode="area")[:, 0]
    return area.numpy() >= 0.5


def test_low_res_masks_agree_with_full_resolution():
    image_size = 256  # the micro model's own size (at other sizes its masks are noisy, unlike a real model's)
    scene = SyntheticScene(480, 640, num_objects=4, seed=0)
    tracker = StreamingTracker(build_sam2("sam2_micro", checkpoint=CHECKPOINT, image_size=image_size))
    tracker.track(scene.frame(80).rgb)
    for k in range(4):
        x, y = scene.frame(80).inner_point(k)
        tracker.add_prompt(k + 1, points=[[x, y]], labels=[1])
    s = image_size // 4
    worst = 1.0
    for t in range(81, 85):
        result = tracker.track(scene.frame(t).rgb)
        assert result.low_res_logits.shape == (4, s, s) and result.low_res_logits.dtype == np.float32
        low = low_res_masks(result.low_res_logits, (480, 640))
        h, w, scale = low_res_size((480, 640), s)
        assert low.size == (h, w) == (round(480 * scale), round(640 * scale)) and low.scale == scale
        assert low.masks.shape == (4, h, w) and low.masks.dtype == bool
        reference = downsample(result.masks, (h, w))
        agreement = [jaccard(a, b) for a, b in zip(low.masks, reference)]
        print(f"image_size {image_size} frame {t}: {w}x{h}, scale {scale}, J(low, full downsampled)",
              np.round(agreement, 4), "areas", low.masks.sum((1, 2)))
        worst = min(worst, *agreement)
    assert worst >= 0.95
    # Candidates carry their grid too; the helper treats them alike.
    x, y = scene.frame(84).inner_point(0)
    cands = tracker.add_prompt(1, points=[[x, y]], labels=[1], multimask=True).candidates
    low = low_res_masks(cands.low_res_logits, (480, 640))
    for a, b in zip(low.masks, downsample(cands.masks, low.size)):
        print(f"candidate: {int(a.sum())} px, J(low, full downsampled) {jaccard(a, b):.4f}")
        if b.sum() >= 50:
            assert jaccard(a, b) >= 0.95
        else:  # a few pixels: J is a matter of one pixel, so count them
            assert np.count_nonzero(a != b) <= 2


@pytest.mark.parametrize("side", [64, 128, 256])
def test_smooth_logits_of_every_grid_size_agree(side):
    """Grids of image_size 256 / 512 / 1024 models, modelled by soft-edged logits of eight synthetic shapes (small
    and large, overlapping) squeezed to s x s as the decoder sees them."""
    shapes = SyntheticScene(480, 640, num_objects=8, seed=3).frame(0).masks
    cover = F.interpolate(torch.from_numpy(shapes.astype(np.float32))[:, None], size=(side, side), mode="area")
    logits = (cover - 0.5) * 20.0  # [8, 1, s, s]
    full = postprocess_masks(logits, (480, 640))[:, 0].numpy() > 0  # what TrackResult.masks holds
    low = low_res_masks(logits[:, 0].numpy(), (480, 640))
    agreement = [jaccard(a, b) for a, b in zip(low.masks, downsample(full, low.size))]
    print(f"grid {side}: {low.size[1]}x{low.size[0]}, J(low, full downsampled) {np.round(agreement, 4)}")
    assert min(agreement) >= 0.95


def test_empty_result_has_an_empty_grid():
    tracker = StreamingTracker(build_sam2("sam2_micro", checkpoint=CHECKPOINT))
    result = tracker.track(np.zeros((48, 64, 3), np.uint8))
    assert result.low_res_logits.shape == (0, 64, 64)
    assert low_res_masks(result.low_res_logits, (48, 64)).masks.shape == (0, 48, 64)
