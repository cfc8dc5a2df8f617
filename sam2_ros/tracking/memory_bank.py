"""Which memories a frame reads (SAM 2's selection rule), how they are batched, and how old state is dropped.

For frame f an object reads (Meta's SAM2Base._prepare_memory_conditioned_features, forward tracking):
- spatial memories of all its prompted frames (slot 0) and, where it has a non-prompted output, of frame f-1
  (slot 6) and of five frames r apart before it (slots 5 .. 1): g, g-r, .. g-4r with g = ((f-2) // r) * r, r being
  memory_temporal_stride_for_eval (r = 1, Meta's default: frames f-6 .. f-1);
- object pointers of its prompted frames at or before f (distance f - t) and of frames f-15 .. f-1 (distance d).
So the prompted frames plus the last 15 tracked frames (5r + 1 for spatial memories) are all that is ever read. A
late prompt on the oldest history frame k needs the same for k, so the bank keeps spatial memories back to
k-(5r+1) and pointers back to k-15.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from sam2_ros.backends.base import InferenceBackend
from sam2_ros.model.config import Sam2Config
from sam2_ros.model.sam2 import Sam2Model
from sam2_ros.tracking.state import Memory, ObjectState


@dataclass
class Layout:
    """One object's memory for one frame: spatial memories with their slots, pointers with their distances."""

    maskmems: list[torch.Tensor]  # each [D, h, w] (bfloat16 as stored), or [D, L] perceiver tokens (EdgeTAM)
    slots: list[int]  # t_pos per spatial memory: 0 prompted, num_maskmem - frames_ago otherwise
    ptrs: list[torch.Tensor]  # each [C]
    rel_t: list[int]  # frame distance per pointer

    @property
    def key(self) -> tuple[int, int]:
        """Objects with equal keys have equal memory shapes and can share one memory-attention call."""
        return len(self.maskmems), len(self.ptrs)

    def rows(self, n: int) -> list["Layout"]:
        """A layout whose tensors hold n rows (memories [n, D, h, w], pointers [n, C]: training's batched clips)
        -> one layout per row, as the assembler takes them."""
        return [Layout([m[i] for m in self.maskmems], self.slots, [p[i] for p in self.ptrs], self.rel_t)
                for i in range(n)]


def memory_frame(index: int, slot: int, num_maskmem: int, stride: int = 1) -> int:
    """The past frame whose spatial memory fills `slot` (1 .. num_maskmem-1) for frame `index` (Meta's rule)."""
    frames_ago = num_maskmem - slot
    if frames_ago == 1:
        return index - 1  # the previous frame, whatever the stride
    return ((index - 2) // stride) * stride - (frames_ago - 2) * stride


def memory_reach(num_maskmem: int, stride: int = 1) -> int:
    """How many frames back a frame's spatial memories can reach (6 for Meta's 7 slots at stride 1)."""
    return max(1, (num_maskmem - 2) * stride + 1)  # ((f-2) // r) * r >= f-1-r


def select_memory(obj: ObjectState, index: int, config: Sam2Config, stride: int = 1,
                  max_ptrs: int | None = None) -> Layout:
    """The memories object `obj` reads when tracking (or correcting) frame `index`; max_ptrs: the pointer window
    (None: the config's max_obj_ptrs_in_encoder, what a stream longer than the window uses)."""
    num_maskmem = config.num_maskmem
    max_ptrs = config.max_obj_ptrs_in_encoder if max_ptrs is None else max_ptrs
    signed_rel = config.use_signed_tpos_enc_to_obj_ptrs
    layout = Layout([], [], [], [])
    cond_frames = sorted(obj.cond)
    for t in cond_frames:
        layout.maskmems.append(obj.cond[t].maskmem)
        layout.slots.append(0)
    for slot in range(1, num_maskmem):
        past = memory_frame(index, slot, num_maskmem, stride)
        entry = obj.recent.get(past)
        if entry is not None:
            if entry.maskmem is None:
                raise RuntimeError(f"memory of frame {past} was dropped too early")
            layout.maskmems.append(entry.maskmem)
            layout.slots.append(slot)
    if config.use_obj_ptrs_in_encoder:
        for t in cond_frames:
            if config.only_obj_ptrs_in_the_past_for_eval and t > index:
                continue
            layout.ptrs.append(obj.cond[t].obj_ptr)
            layout.rel_t.append(index - t if signed_rel else abs(index - t))
        for distance in range(1, max_ptrs):
            t = index - distance
            if t < 0:
                break
            entry = obj.recent.get(t)
            if entry is not None:
                layout.ptrs.append(entry.obj_ptr)
                layout.rel_t.append(distance)
    return layout


class MemoryAssembler:
    """Builds attend_memory inputs for a batch of objects; position encodings of the slots are computed once.

    `backend` may be a Sam2Model (training: the encodings then carry gradients to their parameters, so an
    assembler lives for one forward pass)."""

    def __init__(self, backend: InferenceBackend | Sam2Model, max_rel: int | None = None) -> None:
        self.backend = backend
        # The largest pointer distance the temporal encoding is normalised by (Meta: min(num_frames, max_ptrs) - 1;
        # a stream is longer than any pointer window).
        self.max_rel = backend.config.max_obj_ptrs_in_encoder - 1 if max_rel is None else max_rel
        self._slot_pos: dict[int, torch.Tensor] = {}
        self._maskmem_pos: torch.Tensor | None = None

    def set_maskmem_pos(self, maskmem_pos: torch.Tensor) -> None:
        """The memory encoder's spatial position encoding [1, D, h, w] (the same for every frame)."""
        if self._maskmem_pos is None or self._maskmem_pos.shape != maskmem_pos.shape:
            self._maskmem_pos = maskmem_pos[:1].clone()
            self._slot_pos.clear()

    @property
    def ready(self) -> bool:
        return self._maskmem_pos is not None

    def _slot(self, slot: int) -> torch.Tensor:
        if slot not in self._slot_pos:
            self._slot_pos[slot] = self.backend.memory_pos(self._maskmem_pos, slot)[0]  # [hw, D]
        return self._slot_pos[slot]

    def assemble(self, layouts: Sequence[Layout]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Layouts with one key -> (memory, memory_pos [B, Ms, D], ptr tokens, ptr pos [B, P*C/D, D]), float32."""
        memory = torch.stack([torch.cat([m.flatten(1).transpose(0, 1) for m in lay.maskmems], dim=0)
                              for lay in layouts]).float()  # stored bf16 -> float32, as Meta's torch.cat promotes
        memory_pos = torch.stack([torch.cat([self._slot(s) for s in lay.slots], dim=0) for lay in layouts])
        tokens, positions = [], []
        ptr_pos: dict[tuple[int, ...], torch.Tensor] = {}  # [P, D] per distinct list of distances
        for lay in layouts:
            if not lay.ptrs:
                continue
            ptrs = torch.stack(lay.ptrs).unsqueeze(0)  # [1, P, C]
            rel_t = tuple(lay.rel_t)
            if rel_t not in ptr_pos:
                ptr_pos[rel_t] = self.backend.pointer_pos(lay.rel_t, self.max_rel)
            tok, pos = self.backend.pointer_tokens(ptrs, ptr_pos[rel_t])
            tokens.append(tok)
            positions.append(pos)
        if not tokens:
            empty = memory.new_zeros(len(layouts), 0, memory.shape[-1])
            return memory, memory_pos, empty, empty
        return memory, memory_pos, torch.cat(tokens), torch.cat(positions)

    def nbytes(self) -> int:
        """Bytes of the cached position encodings."""
        cached = list(self._slot_pos.values()) + ([self._maskmem_pos] if self._maskmem_pos is not None else [])
        return sum(t.numel() * t.element_size() for t in cached)


def enforce_cond_cap(obj: ObjectState, cap: int) -> None:
    """Keep the first and the most recent cap-1 prompted frames; the others become ordinary past frames."""
    if len(obj.cond) <= cap:
        return
    frames = sorted(obj.cond)
    keep = {frames[0], *frames[len(frames) - (cap - 1):]}
    for t in frames:
        if t not in keep:
            obj.recent[t] = obj.cond.pop(t)


def trim(obj: ObjectState, oldest_history: int, config: Sam2Config, stride: int = 1) -> None:
    """Drop what no frame from `oldest_history` on can read: pointers older than oldest-15, spatial memories older
    than oldest-memory_reach (6 at stride 1, 16 at stride 3), masks and prompts of frames that left the history."""
    ptr_horizon = oldest_history - (config.max_obj_ptrs_in_encoder - 1)
    mem_horizon = oldest_history - memory_reach(config.num_maskmem, stride)
    for t in [t for t in obj.recent if t < min(ptr_horizon, mem_horizon)]:
        del obj.recent[t]
    for t, entry in list(obj.recent.items()):
        changes = {}
        if t < mem_horizon and entry.maskmem is not None:
            changes["maskmem"] = None
        if t < oldest_history and entry.low_res is not None:
            changes.update(low_res=None, iou=None)
        if changes:
            obj.recent[t] = replace(entry, **changes)
    for t, entry in list(obj.cond.items()):
        if t < oldest_history and entry.low_res is not None:
            obj.cond[t] = replace(entry, low_res=None, iou=None)
    for table in (obj.prompts, obj.points):
        for t in [t for t in table if t < oldest_history]:
            del table[t]


def make_memory(obj_ptr: torch.Tensor, score: torch.Tensor, maskmem: torch.Tensor, low_res: torch.Tensor,
                iou: torch.Tensor) -> Memory:
    """One object's row of batched outputs, copied so the batch tensors can be freed; maskmem stored as bfloat16
    (as Meta's video predictor stores it)."""
    return Memory(obj_ptr=obj_ptr.detach().clone(), score=score.detach().float().clone(),
                  maskmem=maskmem.detach().to(torch.bfloat16).clone(), low_res=low_res.detach().clone(),
                  iou=iou.detach().float().clone())
