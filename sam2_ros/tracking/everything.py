"""Segment everything: SAM's automatic mode on one frame, with no prompt from anyone.

A points_per_side^2 grid of single foreground clicks goes through the prompt encoder + mask decoder in batches
(multimask: three candidates per click; the image encoder runs once, or not at all for a tracker's history frame).
Candidates pass when their predicted IoU and stability (IoU of the mask at logit > +1 vs > -1) reach the
thresholds; duplicates are suppressed by mask IoU, most confident first (predicted IoU x stability, then area);
then min_area and max_objects. Masks that mostly lie inside a better one (containment) count as duplicates too: a
model that answers background clicks with pieces of objects (the micro model does) otherwise returns those pieces.
Optionally the survivors become tracked objects through the tracker's own mask-prompt path.

    found = segment_everything(tracker, None, track=True)     # newest history frame; found.object_ids: new ids
    found = segment_everything(model_or_backend, rgb)         # any HxWx3 uint8 image
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import torch

from sam2_ros.backends.base import InferenceBackend
from sam2_ros.model.sam2 import Sam2Model, postprocess_masks, preprocess
from sam2_ros.tracking.candidates import mask_stability
from sam2_ros.tracking.state import Stamp
from sam2_ros.tracking.tracker import StreamingTracker

# Defaults tuned on the shipped micro model (its predicted IoU and stability run lower than Meta's weights; Meta's
# automatic mask generator uses 0.8 / 0.95 with its own checkpoints). See docs/BENCHMARKS.md.
POINTS_PER_SIDE = 16
MIN_IOU = 0.6
MIN_STABILITY = 0.6
NMS_IOU = 0.5
CONTAINMENT = 0.7
BATCH_BYTES = 128 * 2**20  # default decoder batch: its upscaled features [b, C/8, s, s] float32 stay under this


@dataclass
class EverythingResult:
    """Masks found on one frame, best first (predicted IoU x stability, then area)."""

    stamp: Stamp | None  # the history frame segmented; None for an image given directly
    masks: np.ndarray  # (N, H, W) bool at the frame's resolution
    low_res_logits: np.ndarray  # (N, s, s) float32 decoder grid, for low_res_masks()
    iou: np.ndarray  # (N,) float32 predicted IoU
    stability: np.ndarray  # (N,) float32 IoU of the mask at logit > +1 vs > -1 (decoder grid)
    area: np.ndarray  # (N,) int64 mask pixels at H x W
    points: np.ndarray  # (N, 2) float32 the grid click (x, y source pixels) that gave each mask
    object_ids: list[int] = field(default_factory=list)  # with track=True: the new tracked ids, one per mask

    def __len__(self) -> int:
        return len(self.iou)


def point_grid(points_per_side: int, size: tuple[int, int]) -> np.ndarray:
    """Cell centres of an n x n grid over an image of `size` (H, W): (n*n, 2) x, y pixels, row by row."""
    height, width = size
    centres = (np.arange(points_per_side, dtype=np.float64) + 0.5) / points_per_side
    xs, ys = np.meshgrid(centres * width, centres * height)
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)


@torch.inference_mode()
def segment_everything(source: StreamingTracker | InferenceBackend | Sam2Model,
                       image: np.ndarray | Stamp | None = None, *, points_per_side: int = POINTS_PER_SIDE,
                       points_per_batch: int | None = None, min_iou: float = MIN_IOU,
                       min_stability: float = MIN_STABILITY, min_area: int = 0, max_objects: int = 0,
                       nms_iou: float = NMS_IOU,
                       containment: float | None = CONTAINMENT, track: bool = False,
                       first_id: int | None = None) -> EverythingResult:
    """Segment every object SAM sees on one frame (see the module docstring).

    source: a StreamingTracker (image: None = its newest frame, a stamp = that history frame, both without running
      the image encoder; or an RGB image, encoded once and not added to the history), or a model / backend (image:
      an HxWx3 uint8 RGB array).
    min_iou / min_stability: a candidate passes with predicted IoU and stability at least these.
    Ranking: predicted IoU x stability, then area. nms_iou: a candidate whose mask IoU with a better kept mask
      reaches this is a duplicate; containment: so is one where this fraction of the smaller mask lies in the other
      (a part of a kept object, or a kept object merged with its neighbours; None: off).
    min_area: pixels at the frame's resolution; max_objects: 0 = no limit. points_per_batch: clicks per decoder call
      (None: up to 64, fewer for large models so the batch's upscaled features stay under 128 MB -- 16 for
      sam2.1_hiera_t at 1024).
    track: the survivors become tracked objects on that history frame (tracker only), each through
      add_prompt(id, mask=..., stamp=frame) as a mask prompt; ids are the lowest free ids >= first_id (None: one
      above the largest tracked id), returned in `object_ids`.
    Raises ValueError on bad arguments before any work.
    """
    _check_args(points_per_side, points_per_batch, min_iou, min_stability, min_area, max_objects, nms_iou,
                containment, track, first_id)
    tracker = source if isinstance(source, StreamingTracker) else None
    if track and tracker is None:
        raise ValueError("track=True needs a StreamingTracker to add the objects to")
    backend = tracker.backend if tracker is not None else _as_backend(source)
    if isinstance(image, (np.ndarray, torch.Tensor)):
        if track:
            raise ValueError("track=True segments a tracker's history frame: pass its stamp (or None), not an image")
        prepared = preprocess(image, backend.config.image_size, backend.device)  # raises on a bad image
        feat_s0, feat_s1, image_embed, _ = backend.encode_image(prepared)
        stamp, size = None, (int(image.shape[0]), int(image.shape[1]))
    elif tracker is not None:
        frame = tracker.history_frame(image)
        feat_s0, feat_s1, image_embed, stamp, size = frame.feat_s0, frame.feat_s1, frame.image_embed, frame.stamp, \
            frame.size
    else:
        raise ValueError(f"a model or backend needs an HxWx3 uint8 RGB image, got {type(image).__name__}")

    if points_per_batch is None:
        per_point = 4 * (backend.config.hidden_dim // 8) * (backend.config.image_size // 4) ** 2
        points_per_batch = max(1, min(64, BATCH_BYTES // per_point))
    pix = backend.add_no_memory(image_embed)  # SAM 2's image mode: the frame with the no-memory embedding
    grid = point_grid(points_per_side, size)  # [P, 2] source pixels
    side = backend.config.image_size
    coords = torch.from_numpy(grid / np.array([size[1], size[0]], np.float32) * side)  # [P, 2] model pixels
    pixel_area = size[0] * size[1]
    logits, ious, stabilities, origins = [], [], [], []
    for start in range(0, len(grid), points_per_batch):
        batch = coords[start:start + points_per_batch].to(backend.device)[:, None]  # [b, 1, 2]
        b = batch.shape[0]
        labels = torch.ones(b, 1, dtype=torch.int32, device=backend.device)
        out = backend.decode(pix.expand(b, -1, -1, -1), feat_s0.expand(b, -1, -1, -1),
                             feat_s1.expand(b, -1, -1, -1), batch, labels, None, True)
        masks = out.low_res_multimasks.float().flatten(0, 1)  # [b*M, s, s]
        iou = out.ious.float().flatten()  # [b*M]
        stability = mask_stability(masks)
        grid_area = (masks > 0).flatten(1).sum(1)  # [b*M] pixels of the s x s grid
        # Empty masks go; min_area is checked exactly on the survivors, here only roughly (with a margin).
        keep = (iou >= min_iou) & (stability >= min_stability) & (grid_area > 0) \
            & (grid_area * (pixel_area / masks[0].numel()) >= 0.5 * min_area)
        index = keep.nonzero()[:, 0]
        logits.append(masks[index].cpu())
        ious.append(iou[index].cpu())
        stabilities.append(stability[index].cpu())
        origins.append(start + index.cpu() // out.ious.shape[1])
    logits, ious, stabilities, origins = (torch.cat(logits), torch.cat(ious), torch.cat(stabilities),
                                          torch.cat(origins))
    kept, masks = _suppress(logits, ious * stabilities, size, min_area, max_objects, nms_iou, containment)
    index = torch.tensor(kept, dtype=torch.long)
    found = EverythingResult(
        stamp=stamp, masks=np.stack(masks) if masks else np.zeros((0,) + tuple(size), bool),
        low_res_logits=logits[index].numpy(), iou=ious[index].numpy(), stability=stabilities[index].numpy(),
        area=np.array([int(m.sum()) for m in masks], np.int64), points=grid[origins[index].numpy()])
    if track and len(found):
        if first_id is None:
            first_id = max(tracker.object_ids, default=0) + 1
        taken = set(tracker.object_ids)
        next_id = first_id
        for mask in found.masks:
            while next_id in taken:
                next_id += 1
            tracker.add_prompt(next_id, mask=mask, stamp=stamp)
            found.object_ids.append(next_id)
            taken.add(next_id)
    return found


def _suppress(logits: torch.Tensor, scores: torch.Tensor, size: tuple[int, int], min_area: int, max_objects: int,
              nms_iou: float, containment: float | None) -> tuple[list[int], list[np.ndarray]]:
    """Greedy non-maximum suppression on masks (overlaps measured on the decoder grid), highest score first, larger
    first on ties. A candidate is a duplicate of a kept mask when their IoU reaches nms_iou or when `containment` of
    the smaller one lies in the other; a survivor below min_area (exact, at the frame's size) is dropped and
    suppresses nothing. Returns the kept indices and their masks at the frame's size."""
    binary = (logits > 0).flatten(1).float()  # [K, s*s]
    area = binary.sum(1)  # [K]
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), -float(area[i])))
    kept: list[int] = []
    masks: list[np.ndarray] = []
    for i in order:
        if max_objects and len(kept) >= max_objects:
            break
        if kept:
            inter = binary[kept] @ binary[i]  # [kept]
            union = area[kept] + area[i] - inter
            duplicate = inter >= nms_iou * union
            if containment is not None:
                duplicate |= inter >= containment * torch.minimum(area[kept], area[i])
            if bool(duplicate.any()):
                continue
        full = postprocess_masks(logits[i][None, None], size)[0, 0] > 0  # [H, W]
        if int(full.sum()) < max(min_area, 1):
            continue
        kept.append(i)
        masks.append(full.cpu().numpy())
    return kept, masks


def _as_backend(source: object) -> InferenceBackend:
    if isinstance(source, Sam2Model):
        from sam2_ros.backends.torch_backend import TorchBackend
        return TorchBackend(source)
    if isinstance(source, InferenceBackend):
        return source
    raise ValueError(f"expected a StreamingTracker, Sam2Model or InferenceBackend, got {type(source).__name__}")


def _check_args(points_per_side: object, points_per_batch: object, min_iou: object, min_stability: object,
                min_area: object, max_objects: object, nms_iou: object, containment: object, track: object,
                first_id: object) -> None:
    ints = [(points_per_side, "points_per_side", 1), (min_area, "min_area", 0), (max_objects, "max_objects", 0)]
    if points_per_batch is not None:
        ints.append((points_per_batch, "points_per_batch", 1))
    for value, name, low in ints:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    fractions = [(min_iou, "min_iou"), (min_stability, "min_stability"), (nms_iou, "nms_iou")]
    if containment is not None:
        fractions.append((containment, "containment"))
    for value, name in fractions:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    if not isinstance(track, (bool, np.bool_)):
        raise ValueError(f"track must be a bool, got {type(track).__name__}")
    if first_id is not None and (isinstance(first_id, bool) or not isinstance(first_id, numbers.Integral)
                                 or first_id < 1):
        raise ValueError(f"first_id must be an int >= 1 or None, got {first_id!r}")
