"""Prompts sampled from ground-truth masks the way SAM 2 is trained: clicks inside the object, boxes with jittered
corners, and corrective clicks on the current prediction's errors (positive on missed pixels, negative on extra ones).
Batched torch, driven by an explicit generator so training is reproducible."""
from __future__ import annotations

import torch

BOX_LABELS = (2, 3)  # SAM labels of a box's top-left and bottom-right corners


def sample_points(region: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A uniformly drawn pixel of each row's region [N, H, W] bool -> (xy [N, 2] pixel centres, found [N] bool);
    rows with an empty region get the image centre and found=False."""
    n, h, w = region.shape
    flat = region.flatten(1)
    found = flat.any(dim=1)
    # A uniform draw among the region's pixels: the largest of uniform scores (much cheaper than multinomial).
    scores = torch.rand(flat.shape, generator=gen, device=region.device)
    scores = torch.where(flat | ~found[:, None], scores, -1.0)
    idx = scores.argmax(dim=1)  # [N]
    xy = torch.stack([idx % w, idx // w], dim=1).float() + 0.5
    return xy, found


def sample_box(mask: torch.Tensor, gen: torch.Generator, noise: float = 0.1, max_noise: float = 20.0) -> torch.Tensor:
    """Bounding box of each mask [N, H, W] with corners jittered by noise x side (at most max_noise pixels) as
    two points [N, 2, 2] (x, y): top-left, bottom-right. Empty masks give the whole image."""
    n, h, w = mask.shape
    ys = mask.any(dim=2)  # [N, H]
    xs = mask.any(dim=1)  # [N, W]
    ar_h = torch.arange(h, device=mask.device).float()
    ar_w = torch.arange(w, device=mask.device).float()
    big = float(max(h, w) * 4)
    y0 = torch.where(ys, ar_h, big).amin(1)
    y1 = torch.where(ys, ar_h, -big).amax(1) + 1
    x0 = torch.where(xs, ar_w, big).amin(1)
    x1 = torch.where(xs, ar_w, -big).amax(1) + 1
    empty = ~ys.any(1)
    x0, y0 = torch.where(empty, 0.0, x0), torch.where(empty, 0.0, y0)
    x1, y1 = torch.where(empty, float(w), x1), torch.where(empty, float(h), y1)
    box = torch.stack([x0, y0, x1, y1], dim=1)  # [N, 4]
    side = torch.stack([x1 - x0, y1 - y0, x1 - x0, y1 - y0], dim=1)
    jitter = (torch.rand(n, 4, generator=gen, device=mask.device) * 2 - 1) * (side * noise).clamp(max=max_noise)
    box = box + jitter
    box = torch.stack([box[:, 0].clamp(0, w), box[:, 1].clamp(0, h), box[:, 2].clamp(0, w), box[:, 3].clamp(0, h)], 1)
    return box.view(n, 2, 2)


def corrective_click(pred: torch.Tensor, target: torch.Tensor, gen: torch.Generator
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """One click on each row's error: pred/target [N, H, W] bool -> (xy [N, 1, 2], label [N, 1] int32): 1 where a
    missed object pixel was drawn, 0 on a false positive, -1 (padding) where the prediction is already exact."""
    error = pred ^ target
    xy, found = sample_points(error, gen)
    n, h, w = pred.shape
    ix = xy[:, 0].long().clamp(0, w - 1)
    iy = xy[:, 1].long().clamp(0, h - 1)
    hit = target[torch.arange(n, device=pred.device), iy, ix]
    label = torch.where(found, hit.int(), torch.full_like(hit.int(), -1))
    return xy[:, None], label[:, None].int()


def initial_prompt(mask: torch.Tensor, gen: torch.Generator, kind: str = "click", num_clicks: int = 1
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """A first prompt for every row of mask [N, H, W] bool: `kind` "click" (num_clicks positive clicks drawn from
    the mask) or "box" (jittered bounding box) -> (coords [N, P, 2] pixels, labels [N, P] int32)."""
    n = mask.shape[0]
    if kind == "box":
        return sample_box(mask, gen), torch.tensor(BOX_LABELS, dtype=torch.int32, device=mask.device).expand(n, 2)
    if kind != "click" or num_clicks < 1:
        raise ValueError(f"unknown prompt kind {kind!r} / num_clicks {num_clicks}")
    coords = torch.stack([sample_points(mask, gen)[0] for _ in range(num_clicks)], dim=1)  # [N, P, 2]
    return coords, torch.ones(n, num_clicks, dtype=torch.int32, device=mask.device)
