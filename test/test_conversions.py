"""Image <-> numpy conversions and tracker result -> message conversions of the node (no processes, real messages)."""
from __future__ import annotations

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message

from sam2_ros.ros import conversions as conv


def _msg(arr: np.ndarray, encoding: str, pad: int = 0, big_endian: bool = False):
    """Image message from an [H, W, C] array with `pad` extra bytes per row, through real serialization."""
    from sensor_msgs.msg import Image

    h, w = arr.shape[:2]
    data = arr.astype(arr.dtype.newbyteorder(">" if big_endian else "<")).reshape(h, -1).view(np.uint8)
    rows = np.concatenate([data, np.full((h, pad), 0xAB, np.uint8)], axis=1)
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=int(big_endian), step=rows.shape[1])
    msg.header.frame_id = "cam"
    msg.data = rows.tobytes()
    return deserialize_message(serialize_message(msg), Image)  # as a subscriber gets it (array.array data)


@pytest.mark.parametrize("pad", [0, 5])
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_colour_encodings_to_rgb(encoding, pad):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (7, 11, 3), dtype=np.uint8)
    order = {"rgb8": [0, 1, 2], "bgr8": [2, 1, 0], "rgba8": [0, 1, 2], "bgra8": [2, 1, 0]}[encoding]
    arr = rgb[:, :, order]
    if encoding.endswith("a8"):
        arr = np.concatenate([arr, rng.integers(0, 256, (7, 11, 1), dtype=np.uint8)], axis=2)
    msg = _msg(arr, encoding, pad)
    out = conv.image_to_rgb(msg)
    assert out.shape == (7, 11, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, rgb)
    # zero-copy: the result is a view of the message's own buffer
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8))


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mono8_is_grey_rgb(encoding):
    grey = np.arange(6 * 5, dtype=np.uint8).reshape(6, 5, 1)
    out = conv.image_to_rgb(_msg(grey, encoding, pad=3))
    assert out.shape == (6, 5, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], grey[:, :, 0])


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
def test_mono16_is_scaled_min_max(encoding, big_endian):
    depth = np.array([[1000, 2000], [3000, 1000 + 2000 * 255 // 255]], dtype=np.uint16).reshape(2, 2, 1)
    out = conv.image_to_rgb(_msg(depth, encoding, pad=2, big_endian=big_endian))
    assert out.dtype == np.uint8
    expected = ((depth[:, :, 0].astype(np.float32) - 1000) * (255 / 2000)).astype(np.uint8)
    np.testing.assert_array_equal(out[:, :, 0], expected)
    assert out.min() == 0 and out.max() == 255
    flat = _msg(np.full((3, 3, 1), 7, np.uint16), encoding)
    assert conv.image_to_rgb(flat).max() == 0  # constant image: no division by zero


@pytest.mark.parametrize("case, text", [
    (dict(encoding="yuv422"), "unsupported encoding"),
    (dict(height=0, width=0, step=0, data=b""), "empty image"),
    (dict(step=10), "step 10 is smaller"),
    (dict(data=bytes(4 * 12 - 1)), r"expected height\*step"),
])
def test_bad_images_raise_with_reason(case, text):
    from sensor_msgs.msg import Image

    msg = Image(height=4, width=4, encoding="rgb8", step=12)
    msg.data = bytes(48)
    for key, value in case.items():
        setattr(msg, key, value)
    with pytest.raises(conv.ImageError, match=text):
        conv.image_to_rgb(msg)


def test_array_to_image_round_trip_and_header():
    from std_msgs.msg import Header

    rng = np.random.default_rng(1)
    header = Header(frame_id="optical")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    for encoding, arr in [("rgb8", rng.integers(0, 256, (5, 9, 3), dtype=np.uint8)),
                          ("mono8", rng.integers(0, 256, (5, 9), dtype=np.uint8)),
                          ("mono16", rng.integers(0, 65536, (5, 9), dtype=np.uint16))]:
        msg = conv.array_to_image(arr, encoding, header)
        assert msg.header == header and msg.step == 9 * arr.itemsize * (3 if arr.ndim == 3 else 1)
        back = conv.image_to_array(msg)
        np.testing.assert_array_equal(back.reshape(arr.shape), arr)
    with pytest.raises(conv.ImageError):
        conv.array_to_image(np.zeros((2, 2, 3), np.uint16), "rgb8")


class _Result:
    """A TrackResult-shaped record (the conversion reads only these fields)."""

    def __init__(self, ids, logits, iou, presence):
        self.object_ids, self.mask_logits = ids, np.asarray(logits, np.float32)
        self.iou, self.presence = np.asarray(iou, np.float32), np.asarray(presence, np.float32)
        self.masks = self.mask_logits > 0


def _two_objects():
    logits = np.full((2, 6, 8), -5.0, np.float32)
    logits[0, 1:4, 1:5] = 2.0      # object 3: rows 1..3, cols 1..4
    logits[1, 2:6, 3:8] = 1.0      # object 7: overlaps object 3 at rows 2..3, cols 3..4 with a lower logit
    logits[1, 3, 4] = 9.0          # ... except one pixel where it is more confident
    return _Result([3, 7], logits, [0.9, 0.4], [0.8, 0.3])


def test_frame_outputs_label_image_and_min_iou():
    out = conv.frame_outputs(_two_objects())
    assert out.object_ids == [3, 7] and out.label.dtype == np.uint8
    assert out.label[1, 1] == 3 and out.label[5, 7] == 7 and out.label[0, 0] == 0
    assert out.label[2, 3] == 3, "overlap goes to the higher logit"
    assert out.label[3, 4] == 7
    # the label image is consistent with the masks: every labelled pixel is in that object's mask
    for k, object_id in enumerate(out.object_ids):
        assert out.masks[k][out.label == object_id].all()
    assert ((out.label > 0) == out.masks.any(axis=0)).all()

    gated = conv.frame_outputs(_two_objects(), min_iou=0.5)
    assert gated.masks[1].sum() == 0 and gated.masks[0].sum() == 12
    np.testing.assert_allclose(gated.iou, [0.9, 0.4])  # IoU still reported
    assert not (gated.label == 7).any()

    high = conv.frame_outputs(_Result([300], np.ones((1, 2, 2)), [0.5], [0.5]))
    assert high.label.dtype == np.uint16 and (high.label == 300).all()
    assert conv.to_label_image(high, None).encoding == "mono16"

    empty = conv.frame_outputs(_Result([], np.zeros((0, 4, 5)), [], []))
    assert empty.label.shape == (4, 5) and not empty.label.any()


def test_frame_outputs_are_in_ascending_id_order():
    """The node's contract (docs/node.md: ~/masks per object, ascending id): the tracker answers in insertion order (9, 3,
    5); every per-object column, the columns' lookup and the label image's tie rule follow ascending ids."""
    logits = np.full((3, 6, 8), -5.0, np.float32)
    logits[0, 0:4, 0:4] = 2.0      # object 9
    logits[1, 0:4, 0:4] = 2.0      # object 3: the same pixels and logits as 9 (a tie: the lower id owns them)
    logits[2, 2:6, 2:8] = 1.0      # object 5: overlaps 9 and 3 on rows 2..3, cols 2..3 with a lower logit
    logits[2, 3, 3] = 7.0          # ... except one pixel where it is surer
    result = _Result([9, 3, 5], logits, [0.9, 0.3, 0.6], [0.7, 0.2, 0.5])
    asked: list = []

    def columns(ids):
        asked.append(list(ids))
        return [f"c{i}" for i in ids], np.array(ids, np.float32) / 10, np.array(ids, np.uint8) % 3

    out = conv.frame_outputs(result, columns=columns)
    assert out.object_ids == [3, 5, 9] and asked == [[3, 5, 9]]
    np.testing.assert_allclose(out.iou, [0.3, 0.6, 0.9])
    np.testing.assert_allclose(out.presence, [0.2, 0.5, 0.7])
    np.testing.assert_array_equal(out.masks, result.masks[[1, 2, 0]])
    assert out.labels == ["c3", "c5", "c9"] and out.boxes[0] == out.boxes[2] == (0, 0, 4, 4)
    assert out.label[0, 0] == 3, "equal logits: the lower id owns the pixel"
    assert out.label[2, 2] == 3 and out.label[3, 3] == 5 and out.label[5, 7] == 5
    # the same result given in any order gives the same outputs (ties included)
    for order in ([1, 2, 0], [2, 0, 1], [0, 2, 1]):
        ids = [result.object_ids[i] for i in order]
        again = conv.frame_outputs(_Result(ids, logits[order], result.iou[order], result.presence[order]),
                                   columns=columns)
        assert again.object_ids == out.object_ids and again.boxes == out.boxes and again.labels == out.labels
        for name in ("masks", "iou", "presence", "label", "label_scores", "status"):
            np.testing.assert_array_equal(getattr(again, name), getattr(out, name))
    from std_msgs.msg import Header

    masks = conv.to_mask_array(out, Header())
    assert [o.object_id for o in masks.objects] == [3, 5, 9]
    assert [o.label for o in masks.objects] == ["c3", "c5", "c9"]
    assert list(conv.to_confidence_array(out, Header()).object_ids) == [3, 5, 9]


def test_result_messages():
    from std_msgs.msg import Header

    header = Header(frame_id="cam")
    header.stamp.sec = 99
    out = conv.frame_outputs(_two_objects())
    masks = conv.to_mask_array(out, header)
    assert masks.header == header and [o.object_id for o in masks.objects] == [3, 7]
    first = masks.objects[0]
    assert (first.bbox.x_offset, first.bbox.y_offset, first.bbox.width, first.bbox.height) == (1, 1, 4, 3)
    assert first.area == 12 and first.mask.encoding == "mono8" and first.mask.header == header
    pixels = conv.image_to_array(first.mask)[:, :, 0]
    assert set(np.unique(pixels)) == {0, 255} and (pixels > 0).sum() == 12
    assert abs(first.iou - 0.9) < 1e-6 and abs(first.presence - 0.8) < 1e-6

    conf = conv.to_confidence_array(out, header)
    assert conf.header == header and list(conf.object_ids) == [3, 7]
    assert conf.boxes[0] == first.bbox and np.allclose(conf.iou, [0.9, 0.4])

    label = conv.to_label_image(out, header)
    assert label.encoding == "mono8" and label.header == header
    np.testing.assert_array_equal(conv.image_to_array(label)[:, :, 0], out.label)


def test_overlay_blends_only_masked_pixels():
    rgb = np.full((6, 8, 3), 100, np.uint8)
    out = conv.frame_outputs(_two_objects())
    blended = conv.overlay(rgb, out, alpha=0.5, captions=False)  # captions: test_overlay_captions
    assert blended.shape == rgb.shape and blended.dtype == np.uint8
    assert (blended[0, 0] == 100).all(), "background untouched"
    expected = (100 * 128 + conv.PALETTE[3 % len(conv.PALETTE)].astype(np.int64) * 128) >> 8
    np.testing.assert_array_equal(blended[1, 1], expected)
    np.testing.assert_array_equal(blended[3, 4], (100 * 128 + conv.PALETTE[7].astype(np.int64) * 128) >> 8)
    assert (rgb == 100).all(), "input not modified"
    assert (conv.overlay(rgb, out, alpha=0.0) == 100).all()
    assert conv.to_overlay_image(rgb, out, None).encoding == "rgb8"


def test_overlay_captions_write_id_and_label_next_to_each_object():
    from sam2_ros.ros.overlay_text import MAX_CAPTION, caption, caption_mask

    logits = np.full((2, 120, 160), -5.0, np.float32)
    logits[0, 40:80, 30:70] = 2.0   # object 3 'cup': a caption tag fits above its box
    logits[1, 0:30, 100:150] = 2.0  # object 7 without a label: at the top edge, the tag goes inside the box
    result = _Result([3, 7], logits, [0.9, 0.8], [0.9, 0.9])
    out = conv.frame_outputs(result, columns=lambda ids: (["cup", ""], np.array([0.9, 0.0]), np.array([0, 2])))
    assert out.labels == ["cup", ""] and out.boxes == [(30, 40, 40, 40), (100, 0, 50, 30)]
    rgb = np.full((120, 160, 3), 100, np.uint8)
    plain, drawn = conv.overlay(rgb, out, captions=False), conv.overlay(rgb, out)
    changed = (plain != drawn).any(axis=2)
    tag3, tag7 = caption_mask("3 cup"), caption_mask("7")
    h3, w3 = tag3.shape
    assert changed[40 - h3:40, 30:30 + w3].mean() > 0.5, "a tag of object 3's colour just above its box"
    assert (drawn[40 - h3:40, 30:30 + w3][~tag3] == conv.PALETTE[3]).all()
    assert (drawn[40 - h3:40, 30:30 + w3][tag3] != conv.PALETTE[3]).any(axis=1).all(), "the text is legible"
    assert changed[0:tag7.shape[0], 100:100 + tag7.shape[1]].mean() > 0.5
    outside = np.ones_like(changed)
    outside[40 - h3:40, 30:30 + w3] = outside[0:tag7.shape[0], 100:100 + tag7.shape[1]] = False
    assert not changed[outside].any(), "nothing else changes"
    assert tag3.shape[1] > caption_mask("3").shape[1], "the label is written"
    long = caption(12, "x" * 500)
    assert len(long) == MAX_CAPTION and long.startswith("12 x")
    assert caption_mask(long).shape[1] < 160, "a label of any length gives a tag of bounded size"


def test_prompt_mask():
    from sensor_msgs.msg import Image

    mask = np.zeros((4, 6), np.uint8)
    mask[1:3, 2:5] = 7
    msg = conv.array_to_image(mask, "mono8")
    np.testing.assert_array_equal(conv.prompt_mask_to_bool(msg), mask > 0)
    with pytest.raises(conv.ImageError, match="must be mono8"):
        conv.prompt_mask_to_bool(conv.array_to_image(np.zeros((4, 6, 3), np.uint8), "rgb8"))
    with pytest.raises(conv.ImageError, match="empty image"):
        conv.prompt_mask_to_bool(Image(encoding="mono8"))


def _prompt_spec(**fields):
    """A Prompt message as a subscriber gets it (real serialization) -> the node's PromptRequest."""
    from sam2_ros.msg import Prompt
    from sam2_ros.ros.prompt_msgs import from_prompt_msg

    msg = Prompt(**fields)
    return from_prompt_msg(deserialize_message(serialize_message(msg), Prompt))


def test_prompt_args_keep_only_the_node_checks():
    """The node checks object ids (label images), its object budget and the mask message; the prompt itself goes to
    the tracker's validator, and a mask with points is refused before the mask is decoded, in the validator's words."""
    from geometry_msgs.msg import Point

    from sam2_ros.session.requests import PromptError, prompt_args
    from sam2_ros.tracking.prompts import check_combination, check_prompt

    click = dict(points=[Point(x=5.0, y=6.0)], labels=[1])
    args = prompt_args(_prompt_spec(object_id=3, **click), known_ids=set(), max_objects=1)
    assert (args.object_id, args.points.tolist(), args.labels.tolist(), args.box, args.mask) == (3, [[5, 6]], [1],
                                                                                                 None, None)
    nan_click = prompt_args(_prompt_spec(object_id=3, points=[Point(x=float("nan"), y=6.0)], labels=[1]), set(), 1)
    with pytest.raises(ValueError, match="NaN"):  # passed on unchanged: the tracker's validator refuses it
        check_prompt(nan_click.points, nan_click.labels, nan_click.box, nan_click.mask, (8, 8))
    with pytest.raises(PromptError, match="object_id must be in 1..65535"):
        prompt_args(_prompt_spec(object_id=70000, **click), set(), 4)
    with pytest.raises(PromptError, match="already tracking max_objects=1"):
        prompt_args(_prompt_spec(object_id=2, **click), {1}, 1)
    assert prompt_args(_prompt_spec(object_id=1, **click), {1}, 1).object_id == 1  # a known object may be refined
    undecodable = conv.array_to_image(np.zeros((4, 6, 3), np.uint8), "rgb8")
    with pytest.raises(ValueError) as err:
        prompt_args(_prompt_spec(object_id=3, mask=undecodable, **click), set(), 4)
    with pytest.raises(ValueError) as expected:
        check_combination([[5.0, 6.0]], [1], None, np.zeros((4, 6), bool))
    assert str(err.value) == str(expected.value)
    with pytest.raises(PromptError, match="mask: prompt mask must be mono8"):
        prompt_args(_prompt_spec(object_id=3, mask=undecodable), set(), 4)
    with pytest.raises(ValueError, match="empty prompt"):
        prompt_args(_prompt_spec(object_id=3), set(), 4)


def test_mask_box():
    mask = np.zeros((5, 5), bool)
    assert conv.mask_box(mask) == (0, 0, 0, 0)
    mask[2, 1] = mask[4, 3] = True
    assert conv.mask_box(mask) == (1, 2, 3, 3)


def _compressed(data: bytes, fmt: str):
    from sensor_msgs.msg import CompressedImage

    msg = CompressedImage(format=fmt, data=data)
    return deserialize_message(serialize_message(msg), CompressedImage)


def _encode(arr: np.ndarray, fmt: str, **kwargs) -> bytes:
    import io

    from PIL import Image as PilImage

    out = io.BytesIO()
    PilImage.fromarray(arr).save(out, format=fmt, **kwargs)
    return out.getvalue()


def test_compressed_png_jpeg_and_16_bit():
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    assert np.array_equal(conv.compressed_to_rgb(_compressed(_encode(rgb, "PNG"), "rgb8; png compressed bgr8")), rgb)
    flat = np.full((16, 16, 3), (200, 40, 90), np.uint8)
    jpeg = conv.compressed_to_rgb(_compressed(_encode(flat, "JPEG", quality=95), "jpeg"))
    assert jpeg.shape == (16, 16, 3) and np.abs(jpeg.astype(int) - flat).max() <= 6
    depth = np.arange(6 * 8, dtype=np.uint16).reshape(6, 8) * 1000  # 16-bit grey PNG
    grey = conv.compressed_to_rgb(_compressed(_encode(depth, "PNG"), "16UC1; png"))
    assert grey.shape == (6, 8, 3) and grey[0, 0, 0] == 0 and grey[-1, -1, 0] == 255
    assert np.array_equal(grey[..., 0], conv.scale_to_uint8(depth))


@pytest.mark.parametrize("case", ["empty", "garbage", "truncated", "gif", "too_large"])
def test_bad_compressed_images_are_refused(case):
    rgb = np.zeros((20, 20, 3), np.uint8)
    data = {"empty": b"", "garbage": b"\x89PNG not really" * 10, "truncated": _encode(rgb + 7, "PNG")[:60],
            "gif": _encode(rgb, "GIF"), "too_large": _encode(rgb, "PNG")}[case]
    with pytest.raises(conv.ImageError) as err:
        conv.compressed_to_rgb(_compressed(data, "png"), max_pixels=100 if case == "too_large" else 10**7)
    print(case, "->", err.value)
