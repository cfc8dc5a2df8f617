"""PyTorch backend: runs our Sam2Model's four parts and glue directly (CPU or CUDA).

The CUDA fast path is two options: `precision` runs the four parts under autocast (fp16/bf16; outputs come back as
float32 so the tracker's memory and results keep one dtype), and `compile` wraps the two heavy parts (image encoder,
memory attention) in `torch.compile` — `compile="reduce-overhead"` also captures CUDA graphs for the fixed-shape
image encoder. CUDA graphs replay into static output buffers, so the encoder's results are copied before they are
returned (the tracker keeps them in its frame history). `warm_up` compiles every shape that occurs in a stream
up front, so no recompilation happens mid-stream.

How the warm-up ends compilation: memory attention is compiled once with its varying axes (objects, memory tokens,
pointer tokens) marked dynamic, with duck sizing off (two axes that happen to be equal in one call must not be
tied together) and size-oblivious 0/1 handling (one object or no pointer tokens do not get graphs of their own);
warm-up inputs are distinct tensors (dynamo guards on aliasing: `memory is memory_pos` would be a guard a stream
never meets) and contiguous, as the tracker's are. `compile_backend="aot_eager"` runs the same path on a CPU.
"""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.fx.experimental._config as fx_config

from sam2_ros.model.config import Sam2Config
from sam2_ros.model.sam2 import DecoderOutput, Sam2Model

WARMUP_ENCODER_CALLS = 3  # CUDA graph trees run eagerly first, then record, then replay


def warmup_shapes(config: Sam2Config, max_objects: int) -> list[tuple[int, int, int]]:
    """(objects, memory frames, pointer tokens) of memory-attention calls that cover a stream's shapes.

    With the varying axes marked dynamic (size-oblivious, no duck sizing) these make two graphs: no pointer tokens
    (a symbolic 0 is not traced) and some; the other sizes (1 or several objects, 1 or num_maskmem frames) check
    that one graph takes them all — a test proves that a stream compiles nothing more.
    """
    split = config.hidden_dim // config.mem_dim
    objects = (1, 2) if max_objects >= 2 else (1,)
    pointers = (0, split) if split >= 2 else (0, 1, 2)
    frames = (1, config.num_maskmem)
    return [(b, f, p) for b in objects for p in pointers for f in frames]


class TorchBackend:
    """InferenceBackend over a Sam2Model: every call is the model's own method, so results are the model's."""

    name = "torch"
    PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}

    def __init__(self, model: Sam2Model, precision: str = "fp32", compile: bool | str = False,
                 compile_backend: str = "inductor") -> None:
        if not isinstance(model, Sam2Model):
            raise ValueError(f"TorchBackend needs a Sam2Model, got {type(model).__name__}")
        if precision not in self.PRECISIONS:
            raise ValueError(f"precision must be one of {tuple(self.PRECISIONS)}, got {precision!r}")
        self.model = model.eval()
        self.config: Sam2Config = model.config
        self.device = next(model.parameters()).device
        self.precision = precision
        self.compile = compile
        self.compile_backend = compile_backend
        self._dtype = self.PRECISIONS[precision]
        # CUDA graphs are Inductor's (mode="reduce-overhead"); another backend compiles without a mode.
        self._cuda_graphs = compile == "reduce-overhead" and compile_backend == "inductor"
        self._encode_image: Callable[..., Any] = model.encode_image
        self._attend_memory: Callable[..., Any] = model.attend_memory
        if compile:
            mode = compile if isinstance(compile, str) and compile_backend == "inductor" else None
            # Rotary tables made now enter the compiled graph as float32 constants (no trig in the graph).
            model.memory_attention.rotary.prepare(self.config.memory_attention.feat_size, self.device)
            self._encode_image = torch.compile(model.encode_image, backend=compile_backend, mode=mode, dynamic=False)
            self._attend_memory = _dynamic_attend(torch.compile(model.attend_memory, backend=compile_backend,
                                                                dynamic=False))

    def _run(self, fn: Callable[..., Any], *args: Any, copy: bool = False) -> Any:
        """Call one part, under autocast when a half precision is set, with float32 results; copy=True returns
        tensors that own their memory (never a CUDA graph's static output buffer)."""
        autocast = torch.autocast(self.device.type, dtype=self._dtype) if self._dtype else contextlib.nullcontext()
        with autocast:
            out = fn(*args)
        return _as_float32(out, copy) if (self._dtype or copy) else out

    def encode_image(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Trunk + neck (+ the decoder's skip projections) for one normalised frame [1, 3, S, S]."""
        if self._cuda_graphs:  # the previous replay's outputs were copied: its buffers may be reused now
            torch.compiler.cudagraph_mark_step_begin()
        return self._run(self._encode_image, image, copy=self._cuda_graphs)

    def warm_up(self, max_objects: int = 2) -> list[tuple[int, int, int]]:
        """Run the (compiled) parts on every shape of `warmup_shapes`, so compilation happens now and not on
        the first multi-object or first pointer frame of a stream; returns the shapes run."""
        cfg = self.config
        size, d = cfg.image_size, cfg.mem_dim
        shapes = warmup_shapes(cfg, max_objects)
        with torch.inference_mode():
            image = torch.zeros(1, 3, size, size, device=self.device)
            for _ in range(WARMUP_ENCODER_CALLS):
                _, _, embed, pos = self.encode_image(image)
            for objects, frames, pointers in shapes:  # distinct tensors: no aliasing for dynamo to guard on
                memory, memory_pos = (torch.zeros(objects, frames * cfg.memory_tokens, d, device=self.device)
                                      for _ in "ab")  # [B, Ms, D]
                ptrs, ptr_pos = (torch.zeros(objects, pointers, d, device=self.device) for _ in "ab")  # [B, P, D]
                self.attend_memory(embed.expand(objects, -1, -1, -1), pos.expand(objects, -1, -1, -1), memory,
                                   memory_pos, ptrs, ptr_pos)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return shapes

    def decode(self, image_embed: torch.Tensor, feat_s0: torch.Tensor, feat_s1: torch.Tensor,
               point_coords: torch.Tensor | None, point_labels: torch.Tensor | None,
               mask_input: torch.Tensor | None = None, multimask: bool = False) -> DecoderOutput:
        """Prompt encoder + mask decoder on B rows."""
        return self._run(self.model.decode, image_embed, feat_s0, feat_s1, point_coords, point_labels, mask_input,
                         multimask)

    def attend_memory(self, curr: torch.Tensor, curr_pos: torch.Tensor, memory: torch.Tensor,
                      memory_pos: torch.Tensor, obj_ptrs: torch.Tensor, obj_ptr_pos: torch.Tensor) -> torch.Tensor:
        """Memory attention on B rows sharing one memory layout."""
        return self._run(self._attend_memory, curr, curr_pos, memory, memory_pos, obj_ptrs, obj_ptr_pos)

    def encode_memory(self, pix_feat: torch.Tensor, high_res_masks: torch.Tensor, object_score_logits: torch.Tensor,
                      binarize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory encoder on B rows."""
        return self._run(self.model.encode_memory, pix_feat, high_res_masks, object_score_logits, binarize)

    def mask_as_output(self, image_embed: torch.Tensor, feat_s0: torch.Tensor, feat_s1: torch.Tensor,
                       mask: torch.Tensor) -> DecoderOutput:
        """A mask prompt used as the output (Meta's mask-as-output path)."""
        return self.model.mask_as_output(image_embed, feat_s0, feat_s1, mask)

    def add_no_memory(self, curr: torch.Tensor) -> torch.Tensor:
        """Features of a first prompted frame (no memory yet)."""
        return self.model.add_no_memory(curr)

    def memory_pos(self, maskmem_pos: torch.Tensor, t_pos: int) -> torch.Tensor:
        """Spatial + temporal position of one memory frame's tokens."""
        return self.model.memory_pos(maskmem_pos, t_pos)

    def pointer_pos(self, rel_t: torch.Tensor | Sequence[float], max_rel: float) -> torch.Tensor:
        """Temporal encoding of pointers."""
        return self.model.pointer_pos(rel_t, max_rel)

    def pointer_tokens(self, obj_ptrs: torch.Tensor, ptr_pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Split pointers into memory-width tokens."""
        return self.model.pointer_tokens(obj_ptrs, ptr_pos)


def _dynamic_attend(compiled: Callable[..., Any]) -> Callable[..., Any]:
    """Call compiled memory attention with its varying axes marked dynamic (objects: axis 0 of all; memory and
    pointer tokens: axis 1), no duck sizing and no 0/1 specialisation, on contiguous inputs (an expanded frame
    embedding has batch stride 0, a stacked one does not: strides are guarded too)."""

    def call(curr: torch.Tensor, curr_pos: torch.Tensor, memory: torch.Tensor, memory_pos: torch.Tensor,
             obj_ptrs: torch.Tensor, obj_ptr_pos: torch.Tensor) -> torch.Tensor:
        args = [t.contiguous() for t in (curr, curr_pos, memory, memory_pos, obj_ptrs, obj_ptr_pos)]
        for i, t in enumerate(args):
            torch._dynamo.maybe_mark_dynamic(t, 0)
            if i >= 2 and t.shape[1]:  # 0 pointer tokens: a graph of its own (a symbolic 0 trips dynamo)
                torch._dynamo.maybe_mark_dynamic(t, 1)
        with fx_config.patch(use_duck_shape=False, backed_size_oblivious=True):
            return compiled(*args)

    call.compiled = compiled  # type: ignore[attr-defined]
    return call


def _as_float32(value: Any, copy: bool = False) -> Any:
    """Half-precision tensors (also inside tuples and DecoderOutput) back to float32 (a new tensor); copy=True
    also clones float32 ones; other values unchanged."""
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() and value.dtype != torch.float32:
            return value.float()
        return value.clone() if copy else value
    if isinstance(value, tuple):
        return tuple(_as_float32(v, copy) for v in value)
    if dataclasses.is_dataclass(value):
        return dataclasses.replace(value, **{f.name: _as_float32(getattr(value, f.name), copy)
                                             for f in dataclasses.fields(value)})
    return value


__all__ = ["TorchBackend", "warmup_shapes"]
