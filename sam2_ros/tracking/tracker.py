"""StreamingTracker: SAM 2's video tracking for live streams — frame by frame, bounded memory, prompts at any time.

Semantics are those of Meta's SAM2VideoPredictor (as built by build_sam2_video_predictor) run as a stream: every
object is tracked independently with its own memory bank; a prompt on a frame the object was not tracked on
starts it there (a "conditioning" frame); a prompt on a tracked frame corrects it, fed the previous mask logits.
A prompted frame's memory is encoded from its final mask, thresholded. Hole filling (Meta's CUDA-only extra) is not
done. Frame indices count the frames given to track(); stamps only name and order them.

Ambiguous prompts: add_prompt(..., multimask=True) also returns SAM 2's candidate masks for the object
(TrackResult.candidates); select_candidate() then makes one of them the object's mask there, as a mask prompt.
"""
from __future__ import annotations

import logging
import numbers
from collections import deque

import numpy as np
import torch
import torch.nn.functional as F

from sam2_ros.backends.base import InferenceBackend
from sam2_ros.model.sam2 import Sam2Model, postprocess_masks, preprocess
from sam2_ros.model.transfer import to_host, upload
from sam2_ros.tracking.candidates import CandidateRecord, rank_candidates, to_candidates
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
        self._candidates: dict[int, CandidateRecord] = {}  # object id -> its last multimask prompt's candidates

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
            oldest = self._frames[0].index
            self._candidates = {k: c for k, c in self._candidates.items() if c.frame_index >= oldest}
        self._next_index += 1
        for obj, out in zip(objects, outputs):
            obj.recent[frame.index] = out
            self._trim(obj)
        return self._result(frame)

    @torch.inference_mode()
    def add_prompt(self, object_id: int, points: np.ndarray | None = None, labels: np.ndarray | None = None,
                   box: np.ndarray | None = None, mask: np.ndarray | None = None, stamp: Stamp | None = None,
                   replace: bool = False, multimask: bool = False) -> TrackResult:
        """Add or refine an object on the frame named by `stamp` (None: newest) and return that frame's result.

        points (N, 2) pixel x, y with labels (N,) 1 fg / 0 bg; box (4,) x_min, y_min, x_max, y_max; mask HxW.
        replace=True forgets this object's earlier clicks on that frame (a box always does). On an older history
        frame the object is re-tracked from there to the newest frame; an unknown or too old stamp applies to the
        newest frame with a warning.
        multimask=True (points or a box only) also returns SAM 2's candidate masks for this object in
        `result.candidates` (best predicted IoU first) and keeps them for select_candidate(). The tracked result is
        exactly the one without multimask: where SAM 2 decodes this prompt with several masks anyway (one click)
        the candidates are those of that decode, else one more multimask decode of the same prompt (same clicks,
        features and previous mask) makes them.
        """
        object_id = check_object_id(object_id)
        if not isinstance(multimask, (bool, np.bool_)):
            raise ValueError(f"multimask must be a bool, got {type(multimask).__name__}")
        if not self._frames:
            raise ValueError("no frame yet: call track() with a frame before prompting")
        frame = self._find_frame(stamp)
        prompt = parse_prompt(points, labels, box, mask, replace, frame.size, self.backend.config.image_size)
        if multimask and prompt.mask is not None:
            raise ValueError("multimask needs points or a box: a mask prompt has no candidates")
        obj = self._objects[object_id].copy() if object_id in self._objects else ObjectState(object_id)
        newest = self._frames[-1].index
        if frame.index < newest:  # forget what this object did after the frame; it is redone below
            for table in (obj.cond, obj.recent):
                for t in [t for t in table if t > frame.index]:
                    del table[t]
        record = self._apply_prompt(obj, frame, prompt, bool(multimask))
        obj.prompts.setdefault(frame.index, []).append(prompt)
        for later in [f for f in self._frames if f.index > frame.index]:
            obj.recent[later.index] = self._track_frame(later, self._image_pos, [obj])[0]
            obj.points.pop(later.index, None)
            for earlier_prompt in obj.prompts.get(later.index, []):  # replay prompts given on later frames
                self._apply_prompt(obj, later, earlier_prompt)
        self._trim(obj)
        self._objects[object_id] = obj  # commit
        result = self._result(frame)
        if record is not None:
            self._candidates[object_id] = record
            result.candidates = to_candidates(record, object_id, frame.stamp, frame.size)
        return result

    @torch.inference_mode()
    def select_candidate(self, object_id: int, index: int, stamp: Stamp | None = None) -> TrackResult:
        """Make candidate `index` (into the last multimask add_prompt's `candidates`) the object's mask on that frame.

        Exactly add_prompt(object_id, mask=candidates.masks[index], stamp=<that frame>): the frame's memory is
        encoded from that mask and tracking goes on from it (re-tracked up to the newest frame). stamp, if given,
        must be the candidates' frame. Returns that frame's result. The candidates stay until the object's next
        multimask prompt, its removal, or their frame leaving the history, so another one can still be chosen.
        """
        object_id = check_object_id(object_id)
        if object_id not in self._objects:
            raise ValueError(f"unknown object id {object_id}; tracked: {self.object_ids}")
        record = self._candidates.get(object_id)
        if record is None:
            raise ValueError(f"object {object_id} has no candidates: prompt it with multimask=True (candidates are "
                             "dropped when their frame leaves the history)")
        count = record.iou.shape[0]
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, numbers.Integral) \
                or not 0 <= int(index) < count:
            raise ValueError(f"candidate index must be an int in [0, {count}), got {index!r}")
        frame = next(f for f in self._frames if f.index == record.frame_index)
        if stamp is not None and check_stamp(stamp) != frame.stamp:
            raise ValueError(f"the candidates of object {object_id} are for stamp {frame.stamp}, not {stamp}")
        mask = to_candidates(record, object_id, frame.stamp, frame.size).masks[int(index)]
        return self.add_prompt(object_id, mask=mask, stamp=frame.stamp)

    def remove_object(self, object_id: int) -> None:
        """Stop tracking an object and free its memory."""
        object_id = check_object_id(object_id)
        if object_id not in self._objects:
            raise ValueError(f"unknown object id {object_id}; tracked: {self.object_ids}")
        del self._objects[object_id]
        self._candidates.pop(object_id, None)

    @torch.inference_mode()
    def result(self, stamp: Stamp | None = None) -> TrackResult:
        """The current result of a history frame (None: newest), e.g. the newest frame after a late prompt."""
        if not self._frames:
            raise ValueError("no frame yet")
        return self._result(self._find_frame(stamp))

    def history_frame(self, stamp: Stamp | None = None) -> Frame:
        """A history frame's encoder output by stamp (None: newest; unknown: newest, with a warning), e.g. to
        segment it again without running the image encoder."""
        if not self._frames:
            raise ValueError("no frame yet")
        return self._find_frame(stamp)

    def memory_bytes(self) -> int:
        """Bytes of all tensors the tracker holds (frame history, memory banks, cached encodings, candidates)."""
        return (tensor_bytes([list(self._frames), list(self._objects.values()), self._image_pos,
                              list(self._candidates.values())]) + self._assembler.nbytes())

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

    def _apply_prompt(self, obj: ObjectState, frame: Frame, prompt: Prompt,
                      candidates: bool = False) -> CandidateRecord | None:
        """Run one prompt on a frame for one object and store the output and its memory in `obj`; with
        `candidates` (points / box prompts) also return the prompt's multimask candidates."""
        cfg = self.backend.config
        k = frame.index
        record = None
        is_cond = k not in obj.recent  # not tracked here: the prompt starts (or re-starts) the object here
        previous = obj.output(k)
        if prompt.mask is not None:
            obj.points.pop(k, None)
            out = self.backend.mask_as_output(frame.image_embed, frame.feat_s0, frame.feat_s1,
                                              upload(prompt.mask, self.backend.device))
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
            multimask = cfg.use_multimask(is_cond, int(labels.shape[0]))
            decode_args = (pix, frame.feat_s0, frame.feat_s1, upload(coords[None], self.backend.device),
                           upload(labels[None], self.backend.device), mask_input)
            out = self.backend.decode(*decode_args, multimask)
            if candidates:  # the tracked decode's own candidates, or one more decode just for them
                multi = out if multimask else self.backend.decode(*decode_args, True)
                record = rank_candidates(k, multi.low_res_multimasks[0], multi.ious[0])
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
        return record

    def _result(self, frame: Frame) -> TrackResult:
        ids, entries = [], []
        for object_id, obj in self._objects.items():
            entry = obj.output(frame.index)
            if entry is not None and entry.low_res is not None:
                ids.append(object_id)
                entries.append(entry)
        height, width = frame.size
        if not entries:
            side = self.backend.config.image_size // 4
            return TrackResult(frame.stamp, [], np.zeros((0, height, width), bool),
                               np.zeros((0, height, width), np.float32), np.zeros(0, np.float32),
                               np.zeros(0, np.float32), np.zeros((0, side, side), np.float32))
        low_res = torch.stack([e.low_res for e in entries])  # [N, 1, s, s]
        logits = postprocess_masks(low_res, (height, width))[:, 0]  # [N, H, W]
        iou = torch.cat([e.iou for e in entries])
        presence = torch.cat([e.score for e in entries]).float().sigmoid()
        # One device -> host copy for the frame (on a GPU each .cpu() would wait for the stream on its own).
        logits, iou, presence, low_res = to_host([logits, iou, presence, low_res[:, 0]])
        return TrackResult(frame.stamp, ids, logits > 0, logits, iou, presence, low_res)
