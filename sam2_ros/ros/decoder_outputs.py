"""The rest of SAM 2's decoder in the node's terms : low-resolution masks (`mask_resolution: low`), an
ambiguous prompt's candidates (AddPrompt `candidates`), segment everything (`~/segment_everything`'s arguments and
answer). Message building and argument rules only; the node runs the tracker calls on its inference thread.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sam2_ros.ros import conversions as conv
from sam2_ros.ros.params import Settings
from sam2_ros.session.requests import MAX_OBJECT_ID, PromptError
from sam2_ros.session.worker import ReceivedFrame
from sam2_ros.tracking import Candidates, EverythingResult, TrackResult
from sam2_ros.tracking.resolution import LowResMasks, low_res_masks

MAX_POINTS_PER_SIDE = 64  # 4096 clicks (~4 s of decoder on this CPU with the micro model); more would stall tracking


def low_res_outputs(result: TrackResult, out: conv.FrameOutputs, mask_threshold: float, min_iou: float) -> LowResMasks:
    """The published objects' masks at low resolution, in `out.object_ids` order, thresholded and gated by min_iou
    as frame_outputs does (bilinear resizing commutes with subtracting the threshold)."""
    rows = [list(result.object_ids).index(object_id) for object_id in out.object_ids]
    logits = np.asarray(result.low_res_logits, dtype=np.float32)[rows] - np.float32(mask_threshold)  # [N, s, s]
    low = low_res_masks(logits, out.label.shape)
    low.masks[out.iou < min_iou] = False
    return low


def candidate_masks(cands: Candidates, result: TrackResult, header: Any, low: bool,
                    label: str = "") -> tuple[Any, list[float]]:
    """TrackResult.candidates -> (ObjectMaskArray, stabilities) for AddPrompt's `candidates` / `candidate_stability`:
    one ObjectMask per candidate, best predicted IoU first, all with the prompted object's id and presence. The masks
    are exactly what ~/select_candidate would apply (logit > 0), at low resolution when `low`."""
    from sam2_ros.msg import ObjectMaskArray

    row = list(result.object_ids).index(cands.object_id)
    presence = float(np.clip(result.presence[row], 0.0, 1.0))
    small = low_res_masks(cands.low_res_logits, cands.masks.shape[1:]) if low else None
    objects = [conv.to_object_mask(cands.object_id, np.clip(cands.iou[k], 0.0, 1.0), presence, cands.masks[k],
                                   header, None if small is None else small.masks[k], 1.0 if small is None
                                   else small.scale, label=label) for k in range(len(cands))]
    return ObjectMaskArray(header=header, objects=objects), [float(v) for v in cands.stability]


def everything_answer(found: EverythingResult, args: dict, frame: ReceivedFrame, low: bool) -> tuple[str, Any]:
    """EverythingResult -> (message, ObjectMaskArray) of ~/segment_everything: masks best first, ids the tracked
    ones (track) or 1..N, presence 1 (found on this frame), header the segmented frame's."""
    from sam2_ros.msg import ObjectMaskArray

    ids = found.object_ids or list(range(1, len(found) + 1))
    small = low_res_masks(found.low_res_logits, found.masks.shape[1:]) if low else None
    objects = [conv.to_object_mask(object_id, np.clip(found.iou[k], 0.0, 1.0), 1.0, found.masks[k], frame.header,
                                   None if small is None else small.masks[k], 1.0 if small is None else small.scale)
               for k, object_id in enumerate(ids)]
    n = args["points_per_side"]
    text = (f"{len(found)} mask(s) on frame {frame.stamp_ns} ({n}x{n} points, min_iou {args['min_iou']:.2f}, "
            f"min_stability {args['min_stability']:.2f}, min_area {args['min_area']}, max_objects "
            f"{args['max_objects'] or 'no limit'})")
    if found.object_ids:
        text += "; tracked as object(s) " + ", ".join(map(str, found.object_ids))
    return text, ObjectMaskArray(header=frame.header, objects=objects)


def everything_args(request: Any, settings: Settings, tracked_ids: set[int]) -> dict:
    """SegmentEverything request -> segment_everything() keyword arguments. Zero fields take the node's defaults
    (parameters everything_*); with `track` at most the free object slots (max_objects) are filled. Values out of
    range are refused by segment_everything itself (ValueError), except a grid above MAX_POINTS_PER_SIDE here."""
    side = int(request.points_per_side) or settings.everything_points_per_side
    if side > MAX_POINTS_PER_SIDE:
        raise PromptError(f"points_per_side must be at most {MAX_POINTS_PER_SIDE}, got {side}")
    limit = int(request.max_objects)
    first_id = None  # one above the largest tracked id
    if request.track:
        free = settings.max_objects - len(tracked_ids)
        if free <= 0:
            raise PromptError(f"already tracking max_objects={settings.max_objects} objects; remove one before "
                              "tracking what segment everything finds")
        limit = free if limit == 0 else min(limit, free)  # a negative one: segment_everything refuses it
        if max(tracked_ids, default=0) + limit > MAX_OBJECT_ID:
            first_id = 1  # the lowest free ids instead
    return dict(points_per_side=side, min_iou=float(request.min_iou) or settings.everything_min_iou,
                min_stability=float(request.min_stability) or settings.everything_min_stability,
                min_area=int(request.min_area), max_objects=limit, track=bool(request.track), first_id=first_id)
