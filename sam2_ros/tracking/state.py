"""Data the streaming tracker keeps: results it returns, its options, and its bounded per-frame / per-object state."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Union

import numpy as np
import torch

Stamp = Union[int, float]


@dataclass
class TrackResult:
    """Masks of the tracked objects on one frame, at the frame's own resolution."""

    stamp: Stamp  # the frame this result belongs to
    object_ids: list[int]  # N objects, in the order they were added
    masks: np.ndarray  # (N, H, W) bool, mask_logits > 0
    mask_logits: np.ndarray  # (N, H, W) float32, decoder logits bilinearly resized to H x W
    iou: np.ndarray  # (N,) float32 predicted IoU of each mask
    presence: np.ndarray  # (N,) float32 probability the object is visible (sigmoid of the object score)
    # (N, s, s) float32: the decoder's logits grid (s = image_size / 4, the image squeezed square) before resizing;
    # low_res_masks() turns it into small masks without full-size upsampling. None where not filled.
    low_res_logits: np.ndarray | None = None
    candidates: "Candidates | None" = None  # add_prompt(multimask=True): the prompted object's candidate masks

    def __len__(self) -> int:
        return len(self.object_ids)


@dataclass
class Candidates:
    """SAM 2's candidate masks for one prompted object on one frame (whole / part / surroundings of an ambiguous
    click), best predicted IoU first; select_candidate(object_id, index) makes one of them the object's mask."""

    object_id: int
    stamp: Stamp  # the prompted frame
    masks: np.ndarray  # (K, H, W) bool, mask_logits > 0 (K = 3 for SAM 2)
    mask_logits: np.ndarray  # (K, H, W) float32 at the frame's resolution
    iou: np.ndarray  # (K,) float32 predicted IoU, descending
    stability: np.ndarray  # (K,) float32 IoU of the mask at logit > +1 vs > -1 (on the decoder grid)
    low_res_logits: np.ndarray  # (K, s, s) float32 decoder grid, for low_res_masks()

    def __len__(self) -> int:
        return len(self.iou)


@dataclass(frozen=True)
class TrackerOptions:
    """Sizes of the tracker's bounded state.

    history: recent frames whose encoder features are kept, so a prompt drawn on one of them (named by its stamp)
      is applied there and tracking is carried forward again (~1 s of video at 15 fps). Costs one set of encoder
      features per frame (about 16 MB at image_size 1024).
    max_cond_frames: prompted ("conditioning") frames kept per object; beyond it the first and the most recent
      max_cond_frames - 1 stay (Meta's max_cond_frames_in_attn idea; Meta's default attends to all). An evicted one
      is treated like an ordinary past frame, as Meta treats unselected conditioning frames. Results equal Meta's
      as long as no object has more prompted frames than this.
    batch_objects: run memory attention / decoder / memory encoder for all objects as one batch (objects whose
      memories have the same layout share a memory-attention call). False: one object at a time (for comparisons).
    memory_stride: r, Meta's memory_temporal_stride_for_eval: besides the previous frame, the spatial memories come
      from every r-th frame before it, so they span ~5r frames (a long occlusion leaves older, clean memories in
      view). 0: the model config's (1 in Meta's configs).
    """

    history: int = 15
    max_cond_frames: int = 8
    batch_objects: bool = True
    memory_stride: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.history, int) or self.history < 1:
            raise ValueError(f"history must be an int >= 1, got {self.history!r}")
        if not isinstance(self.max_cond_frames, int) or self.max_cond_frames < 2:
            raise ValueError(f"max_cond_frames must be an int >= 2, got {self.max_cond_frames!r}")
        if not isinstance(self.memory_stride, int) or self.memory_stride < 0:
            raise ValueError(f"memory_stride must be an int >= 0 (0: the model config's), got {self.memory_stride!r}")


@dataclass(frozen=True)
class Frame:
    """Encoder output of one frame in the history (index counts frames given to track(), from 0)."""

    index: int
    stamp: Stamp
    size: tuple[int, int]  # (H, W) of the source image
    feat_s0: torch.Tensor  # [1, C/8, s, s]
    feat_s1: torch.Tensor  # [1, C/4, S/8, S/8]
    image_embed: torch.Tensor  # [1, C, h, w]


@dataclass(frozen=True)
class Memory:
    """What one frame left behind for one object (never mutated; trimmed copies replace it as it ages)."""

    obj_ptr: torch.Tensor  # [C] object pointer
    score: torch.Tensor  # [1] object-score logit (> 0: present)
    maskmem: torch.Tensor | None  # [D, h, w] bfloat16 spatial memory ([D, 512] EdgeTAM tokens); None once too old
    low_res: torch.Tensor | None  # [1, s, s] mask logits; kept while the frame is in the history
    iou: torch.Tensor | None  # [1] predicted IoU; kept with low_res


@dataclass(frozen=True)
class Prompt:
    """One validated prompt in model coordinates (S x S pixels)."""

    coords: torch.Tensor | None  # [N, 2] float32 (box corners first)
    labels: torch.Tensor | None  # [N] int32: 1 fg, 0 bg, 2/3 box corners
    mask: torch.Tensor | None  # [1, 1, S, S] float32 0/1
    replace: bool  # forget earlier points of this object on this frame


@dataclass
class ObjectState:
    """One object's memory bank: prompted frames, recent tracked frames, and the prompts on history frames."""

    object_id: int
    cond: dict[int, Memory] = field(default_factory=dict)  # frame index -> prompted-frame memory
    recent: dict[int, Memory] = field(default_factory=dict)  # frame index -> tracked (or corrected) frame memory
    prompts: dict[int, list[Prompt]] = field(default_factory=dict)  # history frame -> prompts, in arrival order
    points: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)  # accumulated clicks

    def copy(self) -> "ObjectState":
        """A copy whose containers can change without touching this one (tensors are shared, never mutated)."""
        return ObjectState(self.object_id, dict(self.cond), dict(self.recent),
                           {k: list(v) for k, v in self.prompts.items()}, dict(self.points))

    def output(self, index: int) -> Memory | None:
        """This object's latest output on frame `index`, if any."""
        return self.cond.get(index, self.recent.get(index))


def tensor_bytes(obj: object) -> int:
    """Bytes of every tensor reachable through dataclasses, dicts, lists and tuples (shared tensors counted once)."""
    seen: set[int] = set()
    total = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            key = item.untyped_storage().data_ptr()
            if key not in seen:
                seen.add(key)
                total += item.untyped_storage().nbytes()
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif hasattr(item, "__dataclass_fields__"):
            stack.extend(getattr(item, f.name) for f in fields(item))
    return total
