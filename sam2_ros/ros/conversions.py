"""sensor_msgs/Image <-> numpy without cv_bridge, and tracker results -> sam2_ros messages.

Reading is zero-copy where the encoding allows (`np.frombuffer` over the message's buffer, row padding removed with a
strided view); writing uses `bytes` (`arr.tobytes()`), which rclpy takes ~500x faster than a numpy array.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from sam2_ros.objects.boxes import mask_boxes
from sam2_ros.ros.overlay_text import caption, draw_caption

# encoding -> (channels, dtype, channel order as RGB(A) indices or None for mono)
_ENCODINGS: dict[str, tuple[int, np.dtype, tuple[int, ...] | None]] = {
    "rgb8": (3, np.dtype(np.uint8), (0, 1, 2)),
    "bgr8": (3, np.dtype(np.uint8), (2, 1, 0)),
    "rgba8": (4, np.dtype(np.uint8), (0, 1, 2)),
    "bgra8": (4, np.dtype(np.uint8), (2, 1, 0)),
    "mono8": (1, np.dtype(np.uint8), None),
    "8UC1": (1, np.dtype(np.uint8), None),
    "mono16": (1, np.dtype(np.uint16), None),
    "16UC1": (1, np.dtype(np.uint16), None),
    "32FC1": (1, np.dtype(np.float32), None),   # depth in metres (REP 118): read by `depth`, never by `image`
}
SUPPORTED_ENCODINGS = tuple(_ENCODINGS)
# What `image` takes: everything above but float depth (a min..max scaled float image would hide NaN/inf trouble).
COLOUR_ENCODINGS = tuple(e for e in _ENCODINGS if _ENCODINGS[e][1].kind == "u")

# Distinct, bright colours for the overlay; object id k uses PALETTE[k % len(PALETTE)].
PALETTE = np.array([
    [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240],
    [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [220, 190, 255], [170, 110, 40], [255, 250, 200],
    [128, 0, 0], [170, 255, 195], [128, 128, 0], [255, 215, 180], [0, 0, 128], [128, 128, 128]], dtype=np.uint8)


class ImageError(ValueError):
    """An Image message that cannot be read (the text says why, for a log line or a service message)."""


MAX_QUOTED = 40  # characters of a string from outside (an encoding, a format, a frame id) quoted in a reason


def quoted(text: object, limit: int = MAX_QUOTED) -> str:
    """repr() of a string from a message, cut to `limit` characters: a 5000-character encoding must not make a
    5000-character log line."""
    text = str(text)
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def image_to_array(msg) -> np.ndarray:
    """Image message -> [H, W, C] view of its pixels in the message's own encoding (no copy; C = 1 for mono)."""
    if msg.encoding not in _ENCODINGS:
        raise ImageError(f"unsupported encoding {quoted(msg.encoding)} (supported: {', '.join(SUPPORTED_ENCODINGS)})")
    channels, dtype, _ = _ENCODINGS[msg.encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise ImageError(f"empty image ({width}x{height})")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ImageError(f"step {step} is smaller than width*channels*bytes = {row_bytes}")
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if buf.size < height * step:
        raise ImageError(f"data has {buf.size} bytes, expected height*step = {height}*{step} = {height * step}")
    rows = buf[: height * step].reshape(height, step)[:, :row_bytes]  # drop row padding, still a view
    if dtype.itemsize > 1:
        big = bool(msg.is_bigendian)
        rows = np.ascontiguousarray(rows)  # a dtype view needs contiguous rows (16-bit only)
        arr = rows.view(dtype.newbyteorder(">" if big else "<"))
    else:
        arr = rows
    return arr.reshape(height, width, channels)


def image_to_rgb(msg) -> np.ndarray:
    """Image message -> [H, W, 3] uint8 RGB for the tracker (a view for rgb8; 16-bit mono is min-max scaled)."""
    if msg.encoding not in COLOUR_ENCODINGS:
        depth = " (a depth encoding: subscribe it as `depth` with use_depth)" if msg.encoding in _ENCODINGS else ""
        raise ImageError(f"unsupported encoding {quoted(msg.encoding)}{depth} (supported: "
                         f"{', '.join(COLOUR_ENCODINGS)})")
    arr = image_to_array(msg)
    order = _ENCODINGS[msg.encoding][2]
    if order is None:  # mono
        if arr.dtype != np.uint8:
            arr = scale_to_uint8(arr)
        return np.broadcast_to(arr, (arr.shape[0], arr.shape[1], 3))
    if order == (0, 1, 2):
        return arr[:, :, :3]
    return arr[:, :, 2::-1]  # BGR(A) -> RGB as a negative-stride view


COMPRESSED_FORMATS = ("PNG", "JPEG")  # the only decoders run on topic data (image_transport's "compressed")
MAX_COMPRESSED_PIXELS = 40_000_000  # refused before decoding: a tiny PNG can claim a huge canvas


def compressed_to_rgb(msg, max_pixels: int = MAX_COMPRESSED_PIXELS) -> np.ndarray:
    """CompressedImage (JPEG or PNG, 8- or 16-bit) -> [H, W, 3] uint8 RGB; the header is checked before decoding."""
    from PIL import Image as PilImage  # a dependency (package.xml python3-pil, requirements/ros.txt)

    data = bytes(msg.data)
    if not data:
        raise ImageError(f"empty compressed image (format {quoted(msg.format)})")
    try:
        image = PilImage.open(io.BytesIO(data), formats=COMPRESSED_FORMATS)
    except Exception:  # PIL raises several types for data it cannot identify
        raise ImageError(f"not a PNG or JPEG image (format {quoted(msg.format)})") from None
    width, height = image.size
    if width * height > max_pixels or width == 0 or height == 0:
        raise ImageError(f"compressed image of {width}x{height} refused (limit {max_pixels} pixels)")
    try:
        if image.mode.startswith("I"):  # 16/32-bit grey (PNG): min-max scaled like mono16
            grey = scale_to_uint8(np.asarray(image))
            return np.broadcast_to(grey[:, :, None], (height, width, 3))
        return np.asarray(image.convert("RGB"))
    except Exception as err:
        raise ImageError(f"corrupt {image.format} data: {err}") from None


def scale_to_uint8(arr: np.ndarray) -> np.ndarray:
    """16-bit (e.g. depth, IR) -> uint8 by this frame's min..max, so the full range is visible to the model."""
    lo, hi = int(arr.min()), int(arr.max())
    if hi <= lo:
        return np.zeros(arr.shape, np.uint8)
    return ((arr.astype(np.float32) - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def array_to_image(arr: np.ndarray, encoding: str, header=None):
    """[H, W] or [H, W, C] array -> Image message (data set from bytes, which is the fast path in rclpy)."""
    from sensor_msgs.msg import Image

    if encoding not in _ENCODINGS:
        raise ImageError(f"unsupported encoding {quoted(encoding)}")
    channels, dtype, _ = _ENCODINGS[encoding]
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] != channels or arr.dtype != dtype:
        raise ImageError(f"array {arr.shape} {arr.dtype} does not fit encoding {encoding}")
    msg = Image(height=arr.shape[0], width=arr.shape[1], encoding=encoding, is_bigendian=0,
                step=arr.shape[1] * channels * dtype.itemsize)
    if header is not None:
        msg.header = header
    msg.data = arr.astype(dtype.newbyteorder("<"), copy=False).tobytes()
    return msg


def mask_to_image(mask: np.ndarray, header=None):
    """[H, W] bool -> mono8 Image, 255 = object."""
    return array_to_image(np.multiply(mask, 255, dtype=np.uint8), "mono8", header)


def prompt_mask_to_bool(msg) -> np.ndarray:
    """The mask of a Prompt (mono8/8UC1, non-zero = object) -> [H, W] bool (the tracker checks its size)."""
    if msg.encoding not in ("mono8", "8UC1"):
        raise ImageError(f"prompt mask must be mono8, got {quoted(msg.encoding)}")
    return image_to_array(msg)[:, :, 0] != 0


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight box (x, y, width, height) around a [H, W] bool mask; zeros when it is empty (the box rule is
    sam2_ros.objects.mask_boxes, here in RegionOfInterest terms)."""
    return _xywh(mask_boxes(mask[None])[0])


def _xywh(box: np.ndarray) -> tuple[int, int, int, int]:
    """(x_min, y_min, x_max, y_max) with exclusive maxima, NaN when empty -> (x, y, width, height) ints."""
    if not np.isfinite(box).all():
        return 0, 0, 0, 0
    x0, y0, x1, y1 = (int(v) for v in box)
    return x0, y0, x1 - x0, y1 - y0


@dataclass
class FrameOutputs:
    """One frame's result in the node's terms: what gets published (masks already gated by min_iou). Every per-object
    column (labels and status included: the one place other outputs read them from) follows object_ids' order, which
    is ascending (frame_outputs sorts)."""

    object_ids: list[int]
    masks: np.ndarray        # [N, H, W] bool
    iou: np.ndarray          # [N] float32
    presence: np.ndarray     # [N] float32
    label: np.ndarray        # [H, W] uint8 or uint16, 0 = background
    labels: list[str] = field(default_factory=list)  # [N] class names ('' = none)
    label_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # [N] float32
    status: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))  # [N] uint8 ObjectMask.STATUS_*
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)  # [N] (x, y, w, h) of each mask


Columns = Callable[[Sequence[int]], tuple[list[str], np.ndarray, np.ndarray]]


def _no_columns(ids: Sequence[int]) -> tuple[list[str], np.ndarray, np.ndarray]:
    return [""] * len(ids), np.zeros(len(ids), np.float32), np.zeros(len(ids), np.uint8)


def frame_outputs(result, mask_threshold: float = 0.0, min_iou: float = 0.0,
                  columns: Columns = _no_columns) -> FrameOutputs:
    """TrackResult -> masks thresholded at `mask_threshold` (logits), emptied below `min_iou`, plus a label image;
    `columns(ids)` gives (labels, label_scores, status) of the objects (the node's ObjectRegistry.columns).

    Objects come out in ascending id order (the node's contract), whatever order the tracker answers in (the order
    the objects were added), so every output built from this agrees; a label image pixel inside several masks goes
    to the highest logit, on a tie to the lowest id."""
    logits = np.asarray(result.mask_logits, dtype=np.float32)  # [N, H, W]
    iou = np.clip(np.asarray(result.iou, dtype=np.float32).reshape(-1), 0.0, 1.0)
    presence = np.clip(np.asarray(result.presence, dtype=np.float32).reshape(-1), 0.0, 1.0)
    ids = [int(i) for i in result.object_ids]
    order = sorted(range(len(ids)), key=ids.__getitem__)
    tracker_masks = result.masks
    if order != list(range(len(ids))):  # copies [N, H, W] only when the tracker's order is not already ascending
        ids = [ids[k] for k in order]
        logits, iou, presence = logits[order], iou[order], presence[order]
        tracker_masks = np.asarray(tracker_masks)[order]
    if mask_threshold == 0.0:
        masks = np.array(tracker_masks, dtype=bool, copy=True)  # the tracker's own logits > 0
    else:
        masks = logits > mask_threshold
    if len(ids):
        masks[iou < min_iou] = False
    height, width = logits.shape[1:]
    dtype = np.uint8 if not ids or max(ids) <= 255 else np.uint16
    label = np.zeros((height, width), dtype)
    seen = np.zeros((height, width), bool)
    overlap = np.zeros((height, width), bool)
    for k, object_id in enumerate(ids):  # paint (whole-array ops: far faster than boolean indexing)
        np.maximum(label, np.multiply(masks[k], object_id, dtype=dtype), out=label)
        overlap |= seen & masks[k]
        seen |= masks[k]
    if len(ids) > 1:
        # Where masks overlap, the object with the highest logit owns the pixel (only those pixels are resolved);
        # argmax takes the first of equal logits: the lowest id, as the objects are in ascending id order.
        if overlap.any():
            ys, xs = np.nonzero(overlap)
            scores = np.where(masks[:, ys, xs], logits[:, ys, xs], -np.inf)  # [N, P]
            label[ys, xs] = np.asarray(ids, dtype)[np.argmax(scores, axis=0)]
    labels, label_scores, status = columns(ids)
    return FrameOutputs(ids, masks, iou, presence, label, list(labels), np.asarray(label_scores, np.float32),
                        np.asarray(status, np.uint8), [_xywh(b) for b in mask_boxes(masks)])


def _roi(box: tuple[int, int, int, int]):
    from sensor_msgs.msg import RegionOfInterest

    return RegionOfInterest(x_offset=box[0], y_offset=box[1], width=box[2], height=box[3])


def to_object_mask(object_id: int, iou: float, presence: float, mask: np.ndarray, header,
                   low_mask: np.ndarray | None = None, scale: float = 1.0,
                   box: tuple[int, int, int, int] | None = None, label: str = "", label_score: float = 0.0,
                   status: int = 0):
    """One sam2_ros/ObjectMask: bbox (`box` when known, x/y/w/h) and area of the [H, W] bool mask (source pixels);
    the image is that mask, or `low_mask` [h, w] with `scale` = mask pixels per source pixel (mask_resolution low)."""
    from sam2_ros.msg import ObjectMask

    image, scale = (mask, 1.0) if low_mask is None else (low_mask, float(scale))
    return ObjectMask(object_id=int(object_id), iou=float(iou), presence=float(presence),
                      bbox=_roi(mask_box(mask) if box is None else box), area=int(np.count_nonzero(mask)),
                      mask=mask_to_image(image, header), mask_scale=scale, label=label,
                      label_score=float(label_score), status=int(status))


def to_mask_array(out: FrameOutputs, header, low=None):
    """FrameOutputs -> sam2_ros/ObjectMaskArray with `header` (the source image's); `low` (LowResMasks in
    out.object_ids order, mask_resolution low): the mask images come from it."""
    from sam2_ros.msg import ObjectMaskArray

    msg = ObjectMaskArray(header=header)
    msg.objects = [to_object_mask(object_id, out.iou[k], out.presence[k], out.masks[k], header,
                                  None if low is None else low.masks[k], 1.0 if low is None else low.scale,
                                  out.boxes[k], out.labels[k], out.label_scores[k], out.status[k])
                   for k, object_id in enumerate(out.object_ids)]
    return msg


def to_confidence_array(out: FrameOutputs, header):
    """FrameOutputs -> sam2_ros/ObjectConfidenceArray (no pixels)."""
    from sam2_ros.msg import ObjectConfidenceArray

    return ObjectConfidenceArray(header=header, object_ids=list(out.object_ids), iou=[float(v) for v in out.iou],
                                 presence=[float(v) for v in out.presence],
                                 boxes=[_roi(b) for b in out.boxes], labels=list(out.labels),
                                 status=[int(v) for v in out.status])


def to_label_image(out: FrameOutputs, header):
    """Label image: mono8 while every id is <= 255, mono16 otherwise; 0 = background."""
    return array_to_image(out.label, "mono8" if out.label.dtype == np.uint8 else "mono16", header)


def overlay(rgb: np.ndarray, out: FrameOutputs, alpha: float = 0.5, captions: bool = True) -> np.ndarray:
    """[H, W, 3] uint8 frame with each object's pixels (as in the label image) blended in its palette colour and,
    with `captions`, its id + label written next to it (see overlay_text); alpha 0 gives the frame itself."""
    canvas = np.array(rgb, dtype=np.uint8, copy=True, order="C")
    a = int(round(alpha * 256))
    for object_id in out.object_ids:
        own = out.label == object_id
        x, y, w, h = mask_box(own)
        if w == 0 or a == 0:
            continue
        # Blend inside the object's box only (integer maths), then keep it on the object's pixels.
        patch = canvas[y:y + h, x:x + w]
        colour = PALETTE[object_id % len(PALETTE)].astype(np.uint16)
        blended = ((patch.astype(np.uint16) * (256 - a) + colour * a) >> 8).astype(np.uint8)
        np.copyto(patch, blended, where=own[y:y + h, x:x + w, None])
    for k, object_id in enumerate(out.object_ids):  # captions last, so no blend covers one
        x, y, w, _ = out.boxes[k]
        if captions and w > 0 and a > 0:
            draw_caption(canvas, caption(object_id, out.labels[k]), x, y, PALETTE[object_id % len(PALETTE)])
    return canvas


def to_overlay_image(rgb: np.ndarray, out: FrameOutputs, header, alpha: float = 0.5):
    """Overlay as an rgb8 Image message."""
    return array_to_image(overlay(rgb, out, alpha), "rgb8", header)
