"""StreamingTracker: SAM 2's video tracking for live streams — frame by frame, bounded memory, prompts at any time.

Semantics are those of Meta's SAM2VideoPredictor (as built by build_sam2_video_predictor) run as a stream: every
object is tracked independently with its own memory bank; a prompt on a frame the object was not tracked on
starts it there (a "conditioning" frame); a prompt on a tracked frame corrects it, fed the previous mask logits.
A prompted frame's memory is encoded from its final mask, thresholded. Hole filling (Meta's CUDA-only extra) is not
done. Frame indices count the frames given to track(); stamps only name and order them.
"""
from __future__ import annotations

import logging
from collections import deque

import numpy as np
import torch
import torch.nn.functional as F

from sam2_ros.backends.base import InferenceBackend
from sam2_ros.model.sam2 import Sam2Model, postprocess_masks, preprocess
from sam2_ros.tracking.memory_bank import (Layout, MemoryAssembler, enforce_cond_cap, make_memory, select_memory,
                                           trim)
from sam2_ros.tracking.prompts import check_object_id, check_stamp, parse_prompt
from sam2_ros.tracking.state import Frame, Memory, ObjectState, Prompt, Stamp, TrackerOptions, TrackResult, tensor_bytes

logger = logging.getLogger(__name__)
PREV_LOGIT_CLAMP = 32.0  # previous mask logits fed back with a correction are clamped (as Meta does)


class StreamingTracker:
    """Tracks any number of objects through a stream of RGB frames with SAM 2."""

    def __init__(self, model: Sam2Model | InferenceBackend, options: TrackerOptions | None = None) -> None:
        if isinstance(model, Sam2Model):
            from sam2_ros.backends.torch_backend import TorchBackend
            model = TorchBackend(model)
        if not isinstance(model, InferenceBackend):
            raise ValueError(f"expected a Sam2Model or an InferenceBackend, got {type(model).__name__}")
        self.backend = model
        self.options = options or TrackerOptions()
        # Both are checked where they are set (TrackerOptions, Sam2Config): an int >= 1.
        self._stride = self.options.memory_stride or model.config.memory_temporal_stride_for_eval
        self._assembler = MemoryAssembler(model)
        self.reset()

    # ------------------------------------------------------------------ public API
    @property
    def object_ids(self) -> list[int]:
        """Ids of the tracked objects, in the order they were added."""
        return list(self._objects)

    @property
    def stamps(self) -> list[Stamp]:
        """Stamps of the frames in the history (oldest first); prompts may name any of them."""
        return [f.stamp for f in self._frames]

    def reset(self) -> None:
        """Forget every object and frame (a new stream may start again from any stamp)."""
        self._frames: deque[Frame] = deque()
        self._objects: dict[int, ObjectState] = {}
        self._image_pos: torch.Tensor | None = None
        self._next_index = 0

    @torch.inference_mode()
    def track(self, rgb: np.ndarray, stamp: Stamp | None = None) -> TrackResult:
        """Segment every object on a new frame (HxWx3 uint8 RGB); stamps must increase (None: previous + 1)."""
        if not isinstance(rgb, (np.ndarray, torch.Tensor)):
            raise ValueError(f"rgb must be an HxWx3 uint8 numpy array, got {type(rgb).__name__}")
        newest = self._frames[-1] if self._frames else None
        if stamp is None:
            stamp = 0 if newest is None else newest.stamp + 1
        stamp = check_stamp(stamp)
        if newest is not None and not stamp > newest.stamp:
            raise ValueError(f"stamp {stamp} does not follow the newest frame's stamp {newest.stamp}")
        image = preprocess(rgb, self.backend.config.image_size, self.backend.device)  # raises on a bad image
        feat_s0, feat_s1, embed, pos = self.backend.encode_image(image)
        frame = Frame(self._next_index, stamp, (int(rgb.shape[0]), int(rgb.shape[1])), feat_s0, feat_s1, embed)
        objects = list(self._objects.values())
        outputs = self._track_frame(frame, pos, objects)
        # commit
        self._image_pos = pos
        self._frames.append(frame)
        if len(self._frames) > self.options.history:
            self._frames.popleft()
        self._next_index += 1
        for obj, out in zip(objects, outputs):
            obj.recent[frame.index] = out
            self._trim(obj)
        return self._result(frame)

    @torch.inference_mode()
    def add_prompt(self, object_id: int, points: np.ndarray | None = None, labels: np.ndarray | None = None,
                   box: np.ndarray | None = None, mask: np.ndarray | None = None, stamp: Stamp | None = None,
                   replace: bool = False) -> TrackResult:
        """Add or refine an object on the frame named by `stamp` (None: newest) and return that frame's result.

        points (N, 2) pixel x, y with labels (N,) 1 fg / 0 bg; box (4,) x_min, y_min, x_max, y_max; mask HxW.
        replace=True forgets this object's earlier clicks on that frame (a box always does). On an older history
        frame the object is re-tracked from there to the newest frame; an unknown or too old stamp applies to the
        newest frame with a warning.
        """
        object_id = check_object_id(object_id)
        if not self._frames:
            raise ValueError("no frame yet: call track() with a frame before prompting")
        frame = self._find_frame(stamp)
        prompt = parse_prompt(points, labels, box, mask, replace, frame.size, self.backend.config.image_size)
        obj = self._objects[object_id].copy() if object_id in self._objects else ObjectState(object_id)
        newest = self._frames[-1].index
        if frame.index < newest:  # forget what this object did after the frame; it is redone below
            for table in (obj.cond, obj.recent):
                for t in [t for t in table if t > frame.index]:
                    del table[t]
        self._apply_prompt(obj, frame, prompt)
        obj.prompts.setdefault(frame.index, []).append(prompt)
        for later in [f for f in self._frames if f.index > frame.index]:
            obj.recent[later.index] = self._track_frame(later, self._image_pos, [obj])[0]
            obj.points.pop(later.index, None)
            for earlier_prompt in obj.prompts.get(later.index, []):  # replay prompts given on later frames
                self._apply_prompt(obj, later, earlier_prompt)
        self._trim(obj)
        self._objects[object_id] = obj  # commit
        return self._result(frame)

    def remove_object(self, object_id: int) -> None:
        """Stop tracking an object and free its memory."""
        object_id = check_object_id(object_id)
        if object_id not in self._objects:
            raise ValueError(f"unknown object id {object_id}; tracked: {self.object_ids}")
        del self._objects[object_id]

    @torch.inference_mode()
    def result(self, stamp: Stamp | None = None) -> TrackResult:
        """The current result of a history frame (None: newest), e.g. the newest frame after a late prompt."""
        if not self._frames:
            raise ValueError("no frame yet")
        return self._result(self._find_frame(stamp))

    def memory_bytes(self) -> int:
        """Bytes of all tensors the tracker holds (frame history, memory banks, cached encodings)."""
        return (tensor_bytes([list(self._frames), list(self._objects.values()), self._image_pos])
                + self._assembler.nbytes())

    # ------------------------------------------------------------------ internals
    def _find_frame(self, stamp: Stamp | None) -> Frame:
        if stamp is None:
            return self._frames[-1]
        stamp = check_stamp(stamp)
        for frame in self._frames:
            if frame.stamp == stamp:
                return frame
        newest = self._frames[-1]
        logger.warning("prompt stamp %s is not in the frame history (%s .. %s); applying it to the newest frame",
                       stamp, self._frames[0].stamp, newest.stamp)
        return newest

    def _trim(self, obj: ObjectState) -> None:
        trim(obj, self._frames[0].index, self.backend.config, self._stride)

    def _layout(self, obj: ObjectState, index: int) -> Layout:
        return select_memory(obj, index, self.backend.config, self._stride)

    def _attend(self, frame: Frame, image_pos: torch.Tensor, layouts: list[Layout]) -> torch.Tensor:
        """Memory-conditioned features [B, C, h, w] for objects with memory, in the given order."""
        if self.options.batch_objects:
            groups: dict[tuple[int, int], list[int]] = {}
            for i, lay in enumerate(layouts):
                groups.setdefault(lay.key, []).append(i)
            batches = list(groups.values())
        else:
            batches = [[i] for i in range(len(layouts))]
        rows: list[torch.Tensor | None] = [None] * len(layouts)
        for members in batches:
            memory, memory_pos, ptrs, ptr_pos = self._assembler.assemble([layouts[i] for i in members])
            b = len(members)
            pix = self.backend.attend_memory(frame.image_embed.expand(b, -1, -1, -1),
                                             image_pos.expand(b, -1, -1, -1), memory, memory_pos, ptrs, ptr_pos)
            for j, i in enumerate(members):
                rows[i] = pix[j:j + 1]
        return torch.cat(rows)

    def _track_frame(self, frame: Frame, image_pos: torch.Tensor, objects: list[ObjectState]) -> list[Memory]:
        """Track objects (all with memory) on a frame without prompts; nothing is stored here."""
        if not objects:
            return []
        cfg = self.backend.config
        layouts = [self._layout(obj, frame.index) for obj in objects]
        pix = self._attend(frame, image_pos, layouts)
        multimask = cfg.use_multimask(False, 0)
        chunks = [[i] for i in range(len(objects))] if not self.options.batch_objects else [list(range(len(objects)))]
        outputs: list[Memory] = []
        for members in chunks:
            b = len(members)
            rows = pix[members[0]:members[-1] + 1]
            out = self.backend.decode(rows, frame.feat_s0.expand(b, -1, -1, -1), frame.feat_s1.expand(b, -1, -1, -1),
                                      None, None, None, multimask)
            maskmem, maskmem_pos = self.backend.encode_memory(frame.image_embed.expand(b, -1, -1, -1),
                                                              out.high_res_masks, out.object_score_logits, False)
            self._assembler.set_maskmem_pos(maskmem_pos)
            outputs += [make_memory(out.obj_ptr[j], out.object_score_logits[j], maskmem[j], out.low_res_masks[j],
                                    out.iou[j]) for j in range(b)]
        return outputs

    def _apply_prompt(self, obj: ObjectState, frame: Frame, prompt: Prompt) -> None:
        """Run one prompt on a frame for one object and store the output and its memory in `obj`."""
        cfg = self.backend.config
        k = frame.index
        is_cond = k not in obj.recent  # not tracked here: the prompt starts (or re-starts) the object here
        previous = obj.output(k)
        if prompt.mask is not None:
            obj.points.pop(k, None)
            out = self.backend.mask_as_output(frame.image_embed, frame.feat_s0, frame.feat_s1,
                                              prompt.mask.to(self.backend.device))
        else:
            coords, labels = prompt.coords, prompt.labels
            if not prompt.replace and k in obj.points:
                coords = torch.cat([obj.points[k][0], coords])
                labels = torch.cat([obj.points[k][1], labels])
            obj.points[k] = (coords, labels)
            if is_cond:
                pix = self.backend.add_no_memory(frame.image_embed)
            else:
                pix = self._attend(frame, self._image_pos, [self._layout(obj, k)])
            mask_input = None
            if previous is not None and previous.low_res is not None:
                mask_input = previous.low_res.clamp(-PREV_LOGIT_CLAMP, PREV_LOGIT_CLAMP)[None]
            out = self.backend.decode(pix, frame.feat_s0, frame.feat_s1, coords[None].to(self.backend.device),
                                      labels[None].to(self.backend.device), mask_input,
                                      cfg.use_multimask(is_cond, int(labels.shape[0])))
        size = cfg.image_size
        # Memory of a prompted frame comes from its low-res mask, upsampled and thresholded (Meta's preflight).
        high_res = F.interpolate(out.low_res_masks, size=(size, size), mode="bilinear", align_corners=False)
        maskmem, maskmem_pos = self.backend.encode_memory(frame.image_embed, high_res, out.object_score_logits,
                                                          cfg.binarize_mask_from_pts_for_mem_enc)
        self._assembler.set_maskmem_pos(maskmem_pos)
        memory = make_memory(out.obj_ptr[0], out.object_score_logits[0], maskmem[0], out.low_res_masks[0], out.iou[0])
        if is_cond:
            obj.cond[k] = memory
            enforce_cond_cap(obj, self.options.max_cond_frames)
        else:
            obj.recent[k] = memory

    def _result(self, frame: Frame) -> TrackResult:
        ids, entries = [], []
        for object_id, obj in self._objects.items():
            entry = obj.output(frame.index)
            if entry is not None and entry.low_res is not None:
                ids.append(object_id)
                entries.append(entry)
        height, width = frame.size
        if not entries:
            return TrackResult(frame.stamp, [], np.zeros((0, height, width), bool),
                               np.zeros((0, height, width), np.float32), np.zeros(0, np.float32),
                               np.zeros(0, np.float32))
        logits = postprocess_masks(torch.stack([e.low_res for e in entries]), (height, width))[:, 0]  # [N, H, W]
        logits = logits.float().cpu().numpy()
        iou = torch.cat([e.iou for e in entries]).float().cpu().numpy()
        presence = torch.cat([e.score for e in entries]).float().sigmoid().cpu().numpy()
        return TrackResult(frame.stamp, ids, logits > 0, logits, iou, presence)
