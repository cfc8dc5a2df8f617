"""Property-based fuzzing of the image conversions the node runs on every message (issue 19): Image and
CompressedImage -> RGB, prompt masks, array <-> Image round trips, and the per-frame outputs (ascending ids, label
image). Hostile messages (any encoding string, size, step, data length, byte order; random or damaged PNG/JPEG bytes)
give an ImageError with a reason of bounded length or exactly the right pixels, never another exception. Messages go
through real serialization, as a subscriber gets them. Budget: fuzz_util.py."""
from __future__ import annotations

import io

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image as PilImage
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CompressedImage, Image

from fuzz_util import FUZZ_EXAMPLES_SLOW, fuzz, hostile_text
from sam2_ros.ros import conversions as conv

UINT32 = 2 ** 32 - 1
MAX_REASON = 1000  # characters: a reason ends up in a log line or a service answer


def _wire(msg):
    """The message as a subscriber receives it (data as array.array, strings checked by the serializer)."""
    return deserialize_message(serialize_message(msg), type(msg))


def _refused(err: Exception) -> None:
    assert isinstance(err, conv.ImageError) and str(err) and len(str(err)) <= MAX_REASON, repr(err)[:300]


@st.composite
def valid_images(draw):
    """(message, expected RGB) for any colour encoding, row padding and byte order."""
    encoding = draw(st.sampled_from(conv.COLOUR_ENCODINGS))
    h, w, pad = draw(st.integers(1, 9)), draw(st.integers(1, 9)), draw(st.integers(0, 7))
    channels, dtype, order = conv._ENCODINGS[encoding]
    big = draw(st.booleans()) if dtype.itemsize > 1 else False
    info = np.iinfo(dtype)
    seed = draw(st.integers(0, 2 ** 32 - 1))
    pixels = np.random.default_rng(seed).integers(info.min, int(info.max) + 1, (h, w, channels), dtype=dtype)
    if draw(st.booleans()):
        pixels[...] = pixels.flat[0]  # a constant image (16-bit: max == min)
    rows = pixels.astype(dtype.newbyteorder(">" if big else "<")).reshape(h, -1).view(np.uint8)
    data = np.concatenate([rows, np.full((h, pad), 0xEE, np.uint8)], axis=1)
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=int(big), step=data.shape[1], data=data.tobytes())
    if order is None:
        grey = pixels[:, :, 0]
        if dtype.itemsize > 1:
            lo, hi = int(grey.min()), int(grey.max())
            grey = np.zeros_like(grey, np.uint8) if hi <= lo else \
                ((grey.astype(np.float32) - lo) * (255.0 / (hi - lo))).astype(np.uint8)
        expected = np.repeat(grey[:, :, None], 3, axis=2)
    else:
        expected = pixels[:, :, list(order)]
    return _wire(msg), expected


@fuzz()
@given(case=valid_images())
def test_every_colour_encoding_gives_the_right_pixels(case):
    msg, expected = case
    rgb = conv.image_to_rgb(msg)
    assert rgb.shape == expected.shape and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, expected)


@st.composite
def hostile_images(draw):
    """Image messages with any encoding, sizes, step, data length and byte-order flag, some near a valid one."""
    encoding = draw(st.one_of(st.sampled_from(conv.SUPPORTED_ENCODINGS), hostile_text))
    h = draw(st.one_of(st.integers(0, 12), st.sampled_from([UINT32, 2 ** 31, 65536])))
    w = draw(st.one_of(st.integers(0, 12), st.sampled_from([UINT32, 2 ** 31, 65536])))
    step = draw(st.one_of(st.integers(0, 60), st.sampled_from([UINT32, 2 ** 31]),
                          st.just(w * conv._ENCODINGS.get(encoding, (3, np.dtype(np.uint8)))[0] *
                                  conv._ENCODINGS.get(encoding, (3, np.dtype(np.uint8)))[1].itemsize)))
    step = min(step, UINT32)
    size = draw(st.one_of(st.integers(0, 400), st.just(min(h * step, 4000))))
    data = draw(st.binary(min_size=size, max_size=size)) if size < 64 else bytes(range(256)) * (size // 256) + \
        bytes(size % 256)
    big = draw(st.integers(0, 255))
    return _wire(Image(height=h, width=w, encoding=encoding, step=step, is_bigendian=big, data=data))


@fuzz()
@given(msg=hostile_images())
def test_hostile_images_are_refused_or_read_right(msg):
    try:
        rgb = conv.image_to_rgb(msg)
    except Exception as err:  # noqa: BLE001 -- the property: only ImageError
        _refused(err)
        return
    assert rgb.shape == (msg.height, msg.width, 3) and rgb.dtype == np.uint8
    channels, dtype, _ = conv._ENCODINGS[msg.encoding]
    assert msg.step >= msg.width * channels * dtype.itemsize and len(msg.data) >= msg.height * msg.step


@fuzz()
@given(msg=hostile_images())
def test_hostile_prompt_masks_are_refused_or_read_right(msg):
    try:
        mask = conv.prompt_mask_to_bool(msg)
    except Exception as err:  # noqa: BLE001
        _refused(err)
        return
    assert mask.dtype == bool and mask.shape == (msg.height, msg.width)
    rows = np.frombuffer(bytes(msg.data), np.uint8)[: msg.height * msg.step].reshape(msg.height, msg.step)
    np.testing.assert_array_equal(mask, rows[:, : msg.width] != 0)


@fuzz()
@given(encoding=st.sampled_from(conv.SUPPORTED_ENCODINGS), h=st.integers(1, 8), w=st.integers(1, 8),
       seed=st.integers(0, 2 ** 32 - 1))
def test_array_to_image_and_back_is_exact(encoding, h, w, seed):
    channels, dtype, _ = conv._ENCODINGS[encoding]
    rng = np.random.default_rng(seed)
    if dtype.kind == "f":
        arr = rng.normal(0, 1e3, (h, w, channels)).astype(dtype)
        arr.flat[0] = np.nan
    else:
        arr = rng.integers(0, np.iinfo(dtype).max, (h, w, channels), dtype=dtype, endpoint=True)
    back = conv.image_to_array(_wire(conv.array_to_image(arr, encoding)))
    np.testing.assert_array_equal(back, arr)


def _png(arr: np.ndarray, mode: str | None = None) -> bytes:
    out = io.BytesIO()
    PilImage.fromarray(arr, mode).save(out, format="PNG") if mode else PilImage.fromarray(arr).save(out, "PNG")
    return out.getvalue()


@fuzz(FUZZ_EXAMPLES_SLOW)
@given(h=st.integers(1, 12), w=st.integers(1, 12), kind=st.sampled_from(["RGB", "RGBA", "L", "I;16"]),
       seed=st.integers(0, 2 ** 32 - 1))
def test_png_round_trip_is_exact(h, w, kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "I;16":
        grey = rng.integers(0, 65536, (h, w), dtype=np.uint16)
        data = _png(grey)
        lo, hi = int(grey.min()), int(grey.max())
        g8 = np.zeros((h, w), np.uint8) if hi <= lo else ((grey.astype(np.float32) - lo) * (255.0 / (hi - lo))
                                                          ).astype(np.uint8)
        expected = np.repeat(g8[:, :, None], 3, axis=2)
    else:
        channels = {"RGB": 3, "RGBA": 4, "L": 1}[kind]
        arr = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
        data = _png(arr[:, :, 0] if channels == 1 else arr)
        expected = np.repeat(arr, 3, axis=2) if channels == 1 else arr[:, :, :3]
    rgb = conv.compressed_to_rgb(_wire(CompressedImage(format="png", data=data)))
    assert rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, expected)


def _jpeg(h: int, w: int, seed: int) -> bytes:
    out = io.BytesIO()
    PilImage.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(out, "JPEG")
    return out.getvalue()


@st.composite
def hostile_compressed(draw):
    """Random bytes, or a valid PNG / JPEG cut short, with flipped bytes, or with junk appended."""
    kind = draw(st.sampled_from(["random", "png", "jpeg"]))
    if kind == "random":
        return draw(st.binary(max_size=200))
    h, w, seed = draw(st.integers(1, 16)), draw(st.integers(1, 16)), draw(st.integers(0, 1000))
    data = bytearray(_png(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))
                     if kind == "png" else _jpeg(h, w, seed))
    damage = draw(st.sampled_from(["cut", "flip", "append", "none"]))
    if damage == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
    elif damage == "append":
        data += draw(st.binary(min_size=1, max_size=50))
    return bytes(data)


@fuzz(FUZZ_EXAMPLES_SLOW)
@given(data=hostile_compressed(), fmt=st.one_of(st.sampled_from(["png", "jpeg", "rgb8; jpeg compressed bgr8"]),
                                                 hostile_text), limit=st.sampled_from([40_000_000, 100]))
def test_hostile_compressed_images_are_refused_or_decoded(data, fmt, limit):
    msg = _wire(CompressedImage(format=fmt, data=data))
    try:
        rgb = conv.compressed_to_rgb(msg, max_pixels=limit)
    except Exception as err:  # noqa: BLE001
        _refused(err)
        return
    width, height = PilImage.open(io.BytesIO(data)).size
    assert rgb.shape == (height, width, 3) and rgb.dtype == np.uint8 and width * height <= limit


@st.composite
def tracker_results(draw):
    """A TrackResult-shaped record: unique ids in any order (some above 255), logits with ties, any IoU/presence."""
    n = draw(st.integers(0, 5))
    ids = draw(st.lists(st.one_of(st.integers(1, 300), st.integers(1, 65535)), min_size=n, max_size=n,
                        unique=True))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    levels = st.sampled_from([-3.0, -0.5, 0.0, 0.5, 2.0, 2.0, 7.0])   # repeated values make ties
    logits = np.array(draw(st.lists(levels, min_size=n * h * w, max_size=n * h * w)), np.float32).reshape(n, h, w)
    unit = st.floats(-0.5, 1.5)
    iou = np.array(draw(st.lists(unit, min_size=n, max_size=n)), np.float32)
    presence = np.array(draw(st.lists(unit, min_size=n, max_size=n)), np.float32)

    class Result:
        object_ids, mask_logits, masks = ids, logits, logits > 0
    Result.iou, Result.presence = iou, presence
    return Result


@fuzz()
@given(result=tracker_results(), threshold=st.sampled_from([0.0, 0.5, -1.0]), min_iou=st.sampled_from([0.0, 0.5]))
def test_frame_outputs_are_ascending_and_the_label_image_follows_the_rule(result, threshold, min_iou):
    """Ids ascending; the label image is exactly the union of the masks; a pixel goes to the highest logit among the
    masks holding it, on a tie to the lowest id; gated objects keep their IoU; shuffling the input changes nothing."""
    out = conv.frame_outputs(result, threshold, min_iou)
    ids = list(result.object_ids)
    assert out.object_ids == sorted(ids)
    assert out.label.dtype == (np.uint16 if ids and max(ids) > 255 else np.uint8)
    rows = [ids.index(i) for i in out.object_ids]
    logits = result.mask_logits[rows]
    expected_masks = (logits > threshold) & (np.clip(result.iou[rows], 0, 1) >= min_iou)[:, None, None]
    np.testing.assert_array_equal(out.masks, expected_masks.reshape(out.masks.shape))
    np.testing.assert_allclose(out.iou, np.clip(result.iou[rows], 0, 1))
    np.testing.assert_allclose(out.presence, np.clip(result.presence[rows], 0, 1))
    assert ((out.label > 0) == out.masks.any(axis=0)).all()
    for y, x in zip(*np.nonzero(out.label)):
        holders = [k for k in range(len(rows)) if out.masks[k, y, x]]
        best = max(logits[k, y, x] for k in holders)
        assert out.label[y, x] == min(out.object_ids[k] for k in holders if logits[k, y, x] == best)
    shuffled = list(reversed(range(len(ids))))

    class Reversed:
        object_ids = [ids[k] for k in shuffled]
        mask_logits, masks = result.mask_logits[shuffled], result.masks[shuffled]
        iou, presence = result.iou[shuffled], result.presence[shuffled]
    again = conv.frame_outputs(Reversed, threshold, min_iou)
    assert again.object_ids == out.object_ids and again.boxes == out.boxes
    np.testing.assert_array_equal(again.label, out.label)
    np.testing.assert_array_equal(again.masks, out.masks)
