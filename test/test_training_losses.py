"""SAM 2's training losses against their formulas, computed by hand with `math` on small cases (including
all-background and all-foreground masks)."""
import math

import pytest
import torch

from sam2_ros.training.losses import (LossWeights, dice_loss, iou_mse_loss, mask_iou, object_score_loss, sam2_loss,
                                      sigmoid_focal_loss)


def _sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _focal_pixel(logit: float, target: int, alpha: float = 0.25, gamma: float = 2.0) -> float:
    p = _sig(logit)
    ce = -math.log(p) if target else -math.log(1 - p)
    p_t = p if target else 1 - p
    a = alpha if target else 1 - alpha
    return a * (1 - p_t) ** gamma * ce


def _check(name: str, got: torch.Tensor, want: list[float]) -> None:
    diff = (got.double() - torch.tensor(want, dtype=torch.float64)).abs().max().item()
    print(f"{name}: max abs diff {diff:.2e}")
    assert diff < 1e-6


def test_focal_loss_matches_formula():
    torch.manual_seed(0)
    logits = torch.tensor([[0.0, 2.0, -1.5, 3.0], [-4.0, -4.0, -4.0, -4.0], [5.0, 5.0, 5.0, 5.0]])
    target = torch.tensor([[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]])  # mixed, all background, all foreground
    want = [sum(_focal_pixel(float(x), int(t)) for x, t in zip(lr, tr)) / 4 for lr, tr in zip(logits, target)]
    _check("focal", sigmoid_focal_loss(logits, target), want)
    # logit 0, target 1: alpha * 0.5^2 * ln 2 exactly
    _check("focal@0", sigmoid_focal_loss(torch.zeros(1, 1), torch.ones(1, 1)), [0.25 * 0.25 * math.log(2)])
    # confident and right costs almost nothing; confident and wrong costs a lot
    assert sigmoid_focal_loss(torch.full((1, 4), -8.0), torch.zeros(1, 4)) < 1e-6
    assert sigmoid_focal_loss(torch.full((1, 4), -8.0), torch.ones(1, 4)) > 1.0


def test_dice_loss_matches_formula_on_empty_and_full_masks():
    n = 16
    half = torch.zeros(1, n)  # p = 0.5 everywhere
    # all background: 1 - (0 + 1) / (n/2 + 0 + 1)
    _check("dice all-bg", dice_loss(half, torch.zeros(1, n)), [1 - 1 / (n / 2 + 1)])
    # all foreground: 1 - (2 * n/2 + 1) / (n/2 + n + 1)
    _check("dice all-fg", dice_loss(half, torch.ones(1, n)), [1 - (n + 1) / (n / 2 + n + 1)])
    # a confident, exact prediction has (almost) zero loss, the opposite (almost) one
    t = torch.tensor([[1, 1, 0, 0]])
    logits = torch.tensor([[20.0, 20.0, -20.0, -20.0]])
    _check("dice exact", dice_loss(logits, t), [0.0])
    _check("dice wrong", dice_loss(-logits, t), [1 - 1 / (2 + 2 + 1)])


def test_iou_mse_and_object_score_loss():
    target = torch.tensor([[1, 1, 1, 1, 0, 0]])
    logits = torch.tensor([[3.0, 3.0, -3.0, -3.0, -3.0, -3.0]])  # 2 of 4 found, no false positive: IoU 0.5
    _check("iou", mask_iou(logits, target), [0.5])
    _check("iou mse", iou_mse_loss(torch.tensor([0.8]), logits, target), [(0.8 - 0.5) ** 2])
    # both empty counts as a perfect mask; predicting something on an empty target is IoU 0
    _check("iou empty", mask_iou(torch.full((1, 6), -1.0), torch.zeros(1, 6)), [1.0])
    _check("iou fp", mask_iou(torch.full((1, 6), 1.0), torch.zeros(1, 6)), [0.0])
    _check("score", object_score_loss(torch.tensor([0.0, 2.0, 2.0]), torch.tensor([1, 1, 0])),
           [math.log(2), math.log(1 + math.exp(-2)), math.log(1 + math.exp(2))])


def test_sam2_loss_trains_best_candidate_and_skips_absent_objects():
    torch.manual_seed(0)
    h = w = 4
    target = torch.zeros(2, h, w)
    target[0, :2] = 1  # row 0: object in the top half; row 1: object absent
    good = torch.where(target[0] > 0, 6.0, -6.0)
    masks = torch.stack([torch.stack([-good, good, torch.zeros(h, w)]), torch.randn(3, h, w)])  # [2, 3, h, w]
    masks.requires_grad_(True)
    ious = torch.tensor([[0.1, 0.9, 0.5], [0.2, 0.2, 0.2]])
    scores = torch.tensor([[3.0], [-3.0]])
    w8 = LossWeights()
    terms = sam2_loss(masks, ious, scores, target, w8)
    # Row 0 trains candidate 1 (the exact one); row 1's mask and IoU terms are ignored (object absent).
    focal = _focal_pixel(6.0, 1) * 8 / 16 + _focal_pixel(-6.0, 0) * 8 / 16
    p_in, p_out = _sig(6.0), _sig(-6.0)
    dice = 1 - (2 * 8 * p_in + 1) / (8 * p_in + 8 * p_out + 8 + 1)
    iou = ((0.1 - 0.0) ** 2 + (0.9 - 1.0) ** 2 + (0.5 - 0.0) ** 2) / 3  # candidate 2 (p=0.5, logits 0) is empty
    score = (math.log(1 + math.exp(-3.0)) + math.log(1 + math.exp(-3.0))) / 2
    want = w8.focal * focal + w8.dice * dice + w8.iou * iou + w8.score * score
    _check("sam2 total", terms.total.detach()[None], [want])
    terms.total.backward()
    grad = masks.grad.abs().flatten(2).sum(2)  # [2, 3]
    print("grad per candidate", grad.tolist())
    assert grad[0, 1] > 0 and grad[0, 0] == 0 and grad[0, 2] == 0  # only the best candidate learns
    assert torch.all(grad[1] == 0)  # absent object: no mask gradient


@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_soft_targets_on_uniform_masks(fill):
    """All-background / all-foreground targets through the full loss. Absent object (all background): SAM 2 trains
    only the object score, so the mask does not matter; present (all foreground): the right mask costs less."""
    target = torch.full((1, 8, 8), fill)
    right = torch.full((1, 1, 8, 8), 8.0 if fill else -8.0)
    wrong = -right
    score = torch.tensor([[4.0 if fill else -4.0]])
    lo = sam2_loss(right, torch.tensor([[1.0]]), score, target).total
    hi = sam2_loss(wrong, torch.tensor([[1.0]]), score, target).total
    print(f"fill={fill}: right {float(lo):.4f} wrong {float(hi):.4f}")
    assert torch.isfinite(lo) and torch.isfinite(hi)
    if fill:
        assert lo < hi
    else:
        _check("absent: only the score term", torch.stack([lo, hi]), [math.log(1 + math.exp(-4.0))] * 2)
