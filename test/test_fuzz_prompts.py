"""Property-based fuzzing of prompt validation (issue 19): the one prompt check (sam2_ros/tracking/prompts.py) and the
node's side of it (sam2_ros/ros/prompt_msgs.py and sam2_ros/session/requests.py: Prompt messages, clicks, object ids, mask messages). Hostile points,
labels, boxes and masks (NaN, inf, huge, wrong shapes and dtypes, text, ragged lists) give a ValueError with a reason
(PromptError and ImageError are ValueErrors) or a prompt that really is valid; valid prompts map to the model's
input pixels and back. Budget: fuzz_util.py."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from rclpy.serialization import deserialize_message, serialize_message

from fuzz_util import FUZZ_EXAMPLES_SLOW, fuzz, hostile_floats, hostile_text, hostile_values
from sam2_ros.ros.prompt_msgs import from_click, from_prompt_msg
from sam2_ros.session.requests import MAX_OBJECT_ID, PromptRequest, prompt_args
from sam2_ros.tracking.prompts import check_object_id, check_prompt, check_stamp, parse_prompt

sizes = st.tuples(st.integers(1, 64), st.integers(1, 64))   # (H, W) of the prompted frame
MAX_REASON = 2000


def _assert_valid(checked, size) -> None:
    """What a prompt the check lets through must be."""
    height, width = size
    if checked.mask is not None:
        assert checked.points is None and checked.box is None
        assert checked.mask.dtype == bool and checked.mask.shape == (height, width)
        return
    assert checked.points is not None or checked.box is not None
    if checked.points is not None:
        xy, lab = checked.points, checked.labels
        assert xy.ndim == 2 and xy.shape[1] == 2 and xy.shape[0] >= 1 and lab.shape == (xy.shape[0],)
        assert np.isfinite(xy).all() and set(np.unique(lab)) <= {0, 1}
        assert (xy[:, 0] >= 0).all() and (xy[:, 0] <= width).all() and (xy[:, 1] >= 0).all() \
            and (xy[:, 1] <= height).all()
    if checked.box is not None:
        x0, y0, x1, y1 = checked.box.tolist()
        assert np.isfinite(checked.box).all() and 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


def _refused(err: Exception) -> None:
    assert isinstance(err, ValueError) and str(err) and len(str(err)) <= MAX_REASON, repr(err)[:300]


@fuzz()
@given(points=hostile_values(), labels=hostile_values(2, 8), box=hostile_values(2, 5), mask=st.one_of(
    st.none(), hostile_values(3, 8)), size=sizes)
def test_any_prompt_is_refused_or_valid(points, labels, box, mask, size):
    try:
        checked = check_prompt(points, labels, box, mask, size)
    except Exception as err:  # noqa: BLE001 -- the property: only ValueError
        _refused(err)
        return
    _assert_valid(checked, size)


@st.composite
def near_valid_prompts(draw):
    """Points / labels / box that are mostly valid for the frame, with one thing possibly broken."""
    height, width = size = draw(sizes)
    n = draw(st.integers(0, 4))
    coord = st.one_of(st.floats(0, 1), st.sampled_from([-1e-9, 1.0 + 1e-9, np.nan, np.inf]))
    points = [[draw(coord) * width, draw(coord) * height] for _ in range(n)]
    labels = draw(st.lists(st.sampled_from([0, 1, 1, 2, -1]), min_size=n, max_size=n + draw(st.integers(0, 1))))
    box = None
    if draw(st.booleans()):
        x = sorted(draw(st.lists(st.floats(0, 1), min_size=2, max_size=2)))
        y = sorted(draw(st.lists(st.floats(0, 1), min_size=2, max_size=2)))
        box = [x[0] * width, y[0] * height, x[1] * width, y[1] * height]
    if n == 0 and box is None:
        box = [0.0, 0.0, float(width), float(height)]
    return (points or None, labels if n else None, box, size)


@fuzz()
@given(case=near_valid_prompts(), image_size=st.sampled_from([128, 256, 1024]), replace=st.booleans())
def test_valid_prompts_reach_the_model_input_exactly(case, image_size, replace):
    """Model coordinates are source pixels scaled by image_size / (W, H): box corners first (labels 2, 3), then the
    clicks; a box always replaces the frame's earlier clicks."""
    points, labels, box, size = case
    try:
        checked = check_prompt(points, labels, box, None, size)
    except ValueError as err:
        _refused(err)
        return
    _assert_valid(checked, size)
    prompt = parse_prompt(points, labels, box, None, replace, size, image_size)
    height, width = size
    parts = ([checked.box.reshape(2, 2)] if checked.box is not None else []) + \
        ([checked.points] if checked.points is not None else [])
    back = prompt.coords.numpy() / image_size * np.array([width, height], np.float32)
    np.testing.assert_allclose(back, np.concatenate(parts), rtol=1e-5, atol=1e-3)
    expected_labels = ([2, 3] if checked.box is not None else []) + \
        (checked.labels.tolist() if checked.points is not None else [])
    assert prompt.labels.tolist() == expected_labels and prompt.labels.dtype == torch.int32
    assert prompt.replace == (replace or checked.box is not None)


@fuzz(FUZZ_EXAMPLES_SLOW)
@given(h=st.integers(1, 40), w=st.integers(1, 40), image_size=st.sampled_from([16, 64]), seed=st.integers(0, 999))
def test_mask_prompts_become_binary_model_masks(h, w, image_size, seed):
    mask = np.random.default_rng(seed).random((h, w)) > 0.5
    prompt = parse_prompt(None, None, None, mask, False, (h, w), image_size)
    assert prompt.mask.shape == (1, 1, image_size, image_size)
    assert set(torch.unique(prompt.mask).tolist()) <= {0.0, 1.0}
    if not mask.any():
        assert not prompt.mask.any()
    if mask.all():
        assert prompt.mask.all()


@fuzz()
@given(value=st.one_of(hostile_floats, st.integers(-2 ** 70, 2 ** 70), hostile_text, st.booleans(), st.none(),
                       st.lists(st.integers(), max_size=2)))
def test_object_ids_and_stamps_are_checked(value):
    for check in (check_object_id, check_stamp):
        try:
            out = check(value)
        except ValueError as err:
            _refused(err)
            continue
        assert not isinstance(value, bool)
        if check is check_object_id:
            assert isinstance(out, int) and out >= 1 and out == value
        else:
            assert np.isfinite(out) and out == value


@st.composite
def prompt_messages(draw):
    """sam2_ros/Prompt messages as a hostile publisher could send them (through serialization)."""
    from geometry_msgs.msg import Point
    from sensor_msgs.msg import Image

    from sam2_ros.msg import Prompt

    n = draw(st.integers(0, 5))
    f32 = st.one_of(st.floats(-1e3, 1e3, width=32), st.sampled_from([np.nan, np.inf, -np.inf, 3.4e38]))
    msg = Prompt(object_id=draw(st.one_of(st.integers(-2 ** 31, 2 ** 31 - 1), st.integers(-2, 70_000))),
                 points=[Point(x=draw(hostile_floats), y=draw(hostile_floats), z=draw(hostile_floats))
                         for _ in range(n)],
                 labels=draw(st.lists(st.integers(-128, 127), max_size=6)),
                 has_box=draw(st.booleans()), box=draw(st.lists(f32, min_size=4, max_size=4)),
                 replace=draw(st.booleans()), label=draw(hostile_text), multimask=draw(st.booleans()))
    if draw(st.booleans()):
        mh, mw = draw(st.integers(0, 40)), draw(st.integers(0, 40))
        step = draw(st.one_of(st.just(mw), st.integers(0, 50)))
        size = draw(st.one_of(st.just(mh * step), st.integers(0, 300)))
        msg.mask = Image(height=mh, width=mw, step=step, data=bytes(size) if size % 3 else b"\x01" * size,
                         encoding=draw(st.one_of(st.sampled_from(["mono8", "8UC1", "rgb8", ""]), hostile_text)))
    msg.header.stamp.sec = draw(st.integers(0, 2 ** 31 - 1))
    return deserialize_message(serialize_message(msg), Prompt)


@fuzz(FUZZ_EXAMPLES_SLOW)
@given(msg=prompt_messages(), known=st.sets(st.integers(1, 20), max_size=4), max_objects=st.integers(1, 5),
       size=st.tuples(st.integers(1, 40), st.integers(1, 40)))
def test_prompt_messages_are_refused_or_valid_for_the_frame(msg, known, max_objects, size):
    """The node's path for ~/prompt and ~/add_prompt up to the tracker: message -> node checks -> prompt check."""
    spec = from_prompt_msg(msg, "~/prompt")
    try:
        args = prompt_args(spec, known, max_objects)
        checked = check_prompt(args.points, args.labels, args.box, args.mask, size)
    except Exception as err:  # noqa: BLE001
        _refused(err)
        return
    assert 1 <= args.object_id <= MAX_OBJECT_ID
    assert args.object_id in known or len(known) < max_objects
    _assert_valid(checked, size)
    assert isinstance(args.describe(), str)


@fuzz()
@given(x=hostile_floats, y=hostile_floats, positive=st.booleans(), object_id=st.integers(1, MAX_OBJECT_ID),
       size=sizes)
def test_clicks_are_refused_or_inside_the_frame(x, y, positive, object_id, size):
    spec = from_click(object_id, x, y, positive, 0, "~/click")
    try:
        args = prompt_args(spec, set(), 1)
        checked = check_prompt(args.points, args.labels, args.box, args.mask, size)
    except ValueError as err:
        _refused(err)
        assert not (np.isfinite([x, y]).all() and 0 <= x <= size[1] and 0 <= y <= size[0]), \
            "a click inside the frame is accepted"
        return
    _assert_valid(checked, size)
    assert checked.points.tolist() == [[pytest.approx(np.float32(x)), pytest.approx(np.float32(y))]]
    assert checked.labels.tolist() == [1 if positive else 0]


@fuzz(FUZZ_EXAMPLES_SLOW)
@given(n=st.integers(1, 3000), bad=st.sampled_from(["none", "nan", "outside", "label"]), seed=st.integers(0, 99))
def test_long_prompts_give_reasons_and_descriptions_of_bounded_length(n, bad, seed):
    """A 1000-point prompt made a 17 k-character refusal (issue 19): what comes from outside is cut short."""
    rng = np.random.default_rng(seed)
    points, labels = rng.uniform(0, 30, (n, 2)), rng.integers(0, 2, n)
    k = int(rng.integers(0, n))
    if bad == "nan":
        points[k, 0] = np.nan
    elif bad == "outside":
        points[k, 1] = 1e9
    elif bad == "label":
        labels[k] = 7
    args = prompt_args(PromptRequest(1, points, labels, None), set(), 1)
    text = args.describe()
    assert len(text) <= MAX_REASON and (n <= 8 or f"{n} points" in text)
    try:
        check_prompt(args.points, args.labels, args.box, args.mask, (40, 40))
    except ValueError as err:
        _refused(err)
        assert bad != "none"
        return
    assert bad == "none"
