"""The node's depth glue without processes (real messages, real geometry core): depth checks and pairing by stamp
and frame, decoding with camera_info, the owner-pixel rule for overlapping masks, and the three 3-D messages."""
from __future__ import annotations

import numpy as np
import pytest

from sam2_ros.geometry import DepthError, GeometryParams, Intrinsics, IntrinsicsError, extract_objects
from sam2_ros.ros import conversions as conv
from sam2_ros.ros.depth_outputs import (
    MIN_BOX_SCALE, DepthOutputs, decode, marker_text, owner_masks, to_detections_3d, to_markers, to_point_cloud)
from sam2_ros.ros.diagnostics import NodeStats
from sam2_ros.ros.params import Settings
from sam2_ros.session.worker import ReceivedFrame
from sam2_ros.sim import SyntheticScene
from sam2_ros.sim import SyntheticDepthCamera

READ_DTYPE = np.dtype({"names": ["x", "y", "z", "label"], "formats": ["<f4", "<f4", "<f4", "<u4"],
                       "offsets": [0, 4, 8, 12], "itemsize": 16})
H, W = 96, 128


def _header(stamp_ns: int = 5_000_000_123, frame_id: str = "cam_optical"):
    from std_msgs.msg import Header

    from sam2_ros.ros import stamps

    h = Header(frame_id=frame_id)
    stamps.set_ns(h, stamp_ns)
    return h


def _depth_msg(arr: np.ndarray, encoding: str, stamp_ns: int = 5_000_000_123, frame_id: str = "cam_optical"):
    msg = conv.array_to_image(arr, encoding, _header(stamp_ns, frame_id))
    return msg


def _info(intr: Intrinsics, width: int | None = None, height: int | None = None):
    from sensor_msgs.msg import CameraInfo

    return CameraInfo(width=intr.width if width is None else width, height=intr.height if height is None else height,
                      k=[float(v) for v in intr.k.reshape(-1)])


def _scene():
    scene = SyntheticScene(H, W, num_objects=3, seed=1)
    return scene, SyntheticDepthCamera(scene), scene.frame(4)


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, kind: str, text: str) -> None:  # the node's warn(kind, text): throttled per kind
        self.lines.append(text)


def _outputs(frame, ids=None) -> conv.FrameOutputs:
    """FrameOutputs whose masks are the scene's visible masks (logits +/-5)."""
    from types import SimpleNamespace

    ids = list(frame.object_ids if ids is None else ids)
    masks = frame.masks[: len(ids)]
    result = SimpleNamespace(object_ids=ids, masks=masks, mask_logits=np.where(masks, 5.0, -5.0),
                             iou=np.linspace(0.9, 0.7, len(ids)), presence=np.ones(len(ids)))
    return conv.frame_outputs(result)


@pytest.mark.parametrize("encoding, scale", [("16UC1", 1.0), ("32FC1", 1.0), ("16UC1", 0.5), ("32FC1", 0.5)])
def test_decode_encodings_and_resolutions(encoding, scale):
    scene, camera, frame = _scene()
    d = camera.render(frame, encoding, scale)
    depth, intr = decode(_depth_msg(d.depth, encoding), (H, W), _info(camera.intrinsics))
    assert depth.dtype == np.float32 and depth.shape == d.depth.shape
    assert intr == camera.intrinsics                     # the colour camera's; the core scales it to the depth size
    ok = np.isfinite(depth)
    expected = d.depth.astype(np.float32) * (0.001 if encoding == "16UC1" else 1.0)
    np.testing.assert_allclose(depth[ok], expected[ok], rtol=1e-6)
    assert np.isnan(depth[~ok]).all() and (~ok).any()
    # camera_info without a size (0 x 0): the colour image's size is assumed
    _, intr0 = decode(_depth_msg(d.depth, encoding), (H, W), _info(camera.intrinsics, 0, 0))
    assert intr0 == camera.intrinsics


def test_decode_refusals_say_why():
    scene, camera, frame = _scene()
    good = camera.render(frame, "16UC1").depth
    info = _info(camera.intrinsics)
    with pytest.raises(IntrinsicsError, match="no camera_info received yet"):
        decode(_depth_msg(good, "16UC1"), (H, W), None)
    with pytest.raises(IntrinsicsError, match="not calibrated"):
        decode(_depth_msg(good, "16UC1"), (H, W), _info(camera.intrinsics).__class__(width=W, height=H))
    with pytest.raises(IntrinsicsError, match=f"camera_info is for {W}x{W}, another aspect ratio"):
        decode(_depth_msg(good, "16UC1"), (H, W), _info(camera.intrinsics, W, W))
    with pytest.raises(DepthError, match=f"depth image 100x100 has another aspect ratio than the colour image {W}x{H}"):
        decode(_depth_msg(np.ones((100, 100), np.uint16), "16UC1"), (H, W), info)
    truncated = _depth_msg(good, "16UC1")
    truncated.data = bytes(truncated.data)[: len(truncated.data) // 2]
    with pytest.raises(conv.ImageError, match="expected height"):
        decode(truncated, (H, W), info)
    wrong_dtype = _depth_msg(good, "16UC1")
    wrong_dtype.encoding = "32FC1"   # 16-bit data declared as float: the rows are too short
    with pytest.raises(conv.ImageError, match="step"):
        decode(wrong_dtype, (H, W), info)


def test_colour_path_refuses_32fc1():
    msg = conv.array_to_image(np.ones((4, 5), np.float32), "32FC1")
    with pytest.raises(conv.ImageError, match="unsupported encoding '32FC1' .a depth encoding"):
        conv.image_to_rgb(msg)
    assert conv.image_to_array(msg).dtype == np.float32  # readable as an array (for `depth`)


def test_pairing_by_stamp_and_frame_id_and_paired_rate():
    log, stats = _Log(), NodeStats()
    outputs = DepthOutputs(Settings(use_depth=True, depth_max_dt=0.02), stats, log)
    base = 7_000_000_000
    near = _depth_msg(np.ones((H, W), np.uint16), "16UC1", base + 10_000_000)   # 10 ms after
    outputs.add(near)
    outputs.add(_depth_msg(np.ones((H, W, 3), np.uint8), "rgb8", base))          # not depth: refused
    assert log.lines == ["depth image refused: encoding 'rgb8' is not a depth encoding (16UC1 / mono16 in mm, 32FC1 "
                         "in m)"]
    assert len(outputs.pairing) == 1

    def frame(stamp, frame_id="cam_optical"):
        return ReceivedFrame(stamp_ns=stamp, header=_header(stamp, frame_id), rgb=None)

    f = frame(base)
    outputs.pair(f)
    assert f.depth is near
    outputs.pair(f, final=True)                   # already paired: kept, counted
    lonely = frame(base + 100_000_000)            # 90 ms from any depth: none, and no stale depth later
    outputs.pair(lonely)
    outputs.pair(lonely, final=True)
    assert lonely.depth is None
    other = _depth_msg(np.ones((H, W), np.uint16), "16UC1", base + 200_000_000, frame_id="depth_optical")
    outputs.add(other)
    for _ in range(3):
        g = frame(base + 200_000_000)
        outputs.pair(g, final=True)
        assert g.depth is None                    # not registered to the colour frame
    refusals = [t for t in log.lines if "frame_id 'depth_optical' is not the colour image's 'cam_optical'" in t]
    assert len(refusals) == 1, log.lines          # logged once
    _, rate, _ = stats.depth_paired.take()
    assert rate == pytest.approx(1 / 5)
    outputs.clear()
    assert len(outputs.pairing) == 0
    off = DepthOutputs(Settings(), NodeStats(), log)   # use_depth false: nothing pairs, nothing is counted
    h = frame(base + 200_000_000)
    off.pairing.add(base + 200_000_000, other)
    off.pair(h, final=True)
    assert h.depth is None and off.stats.depth_paired.take()[0] == 0


def test_bad_depth_parameters_are_refused_at_configure():
    with pytest.raises(ValueError, match="depth_min < depth_max"):
        DepthOutputs(Settings(use_depth=True, depth_min=2.0, depth_max=1.0), NodeStats(), _Log())


def test_overlapping_masks_go_to_the_label_owner():
    from types import SimpleNamespace

    masks = np.zeros((2, 6, 8), bool)
    masks[0, 1:5, 1:5] = True
    masks[1, 2:6, 3:8] = True                      # overlaps object 1 on rows 2..4, cols 3..4
    logits = np.where(masks, 1.0, -1.0)
    logits[1][masks[1]] = 3.0                      # object 2 is surer: it owns the overlap
    out = conv.frame_outputs(SimpleNamespace(object_ids=[1, 2], masks=masks, mask_logits=logits, iou=[0.9, 0.8],
                                             presence=[1.0, 1.0]))
    own = owner_masks(out)
    assert not (own[0] & own[1]).any()
    np.testing.assert_array_equal(own[1], masks[1])
    np.testing.assert_array_equal(own[0], masks[0] & ~masks[1])
    single = conv.frame_outputs(SimpleNamespace(object_ids=[4], masks=masks[:1], mask_logits=logits[:1], iou=[0.9],
                                                presence=[1.0]))
    assert owner_masks(single) is single.masks


def _objects():
    scene, camera, frame = _scene()
    out = _outputs(frame)
    depth = camera.render(frame, "32FC1").depth
    objects = extract_objects(owner_masks(out), out.object_ids, depth, camera.intrinsics, GeometryParams())
    assert [o.object_id for o in objects] == [1, 2, 3]
    return objects


def test_point_cloud_message_parses_back():
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import PointCloud2

    objects = _objects()
    header = _header()
    msg = deserialize_message(serialize_message(to_point_cloud(objects, header)), PointCloud2)
    assert msg.header == header and msg.height == 1 and msg.point_step == 16 and msg.is_dense
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1), ("label", 12, 6, 1)]
    points = np.frombuffer(bytes(msg.data), READ_DTYPE)
    assert msg.width == points.shape[0] == sum(o.points.shape[0] for o in objects)
    for o in objects:
        mine = points[points["label"] == o.object_id]
        np.testing.assert_array_equal(np.stack([mine["x"], mine["y"], mine["z"]], 1), o.points)
    empty = to_point_cloud([], header)
    assert (empty.width, len(empty.data), empty.header) == (0, 0, header)


def test_detections_3d():
    objects = _objects()
    header = _header()
    msg = to_detections_3d(objects, [0.9, 0.8, 0.7], ["cup", "", "box"], header)
    assert msg.header == header and [d.id for d in msg.detections] == ["1", "2", "3"]
    for d, o, score, label in zip(msg.detections, objects, [0.9, 0.8, 0.7], ["cup", "", "box"]):
        (h,) = d.results
        assert d.header == header and h.hypothesis.class_id == label and h.hypothesis.score == pytest.approx(score)
        p = h.pose.pose.position
        assert (p.x, p.y, p.z) == pytest.approx(tuple(o.centroid))
        c, s = d.bbox.center, d.bbox.size
        lo, hi = o.points.min(0), o.points.max(0)      # the box is the points' box
        assert (c.position.x, c.position.y, c.position.z) == pytest.approx(tuple((lo + hi) / 2), abs=1e-6)
        assert (s.x, s.y, s.z) == pytest.approx(tuple(hi - lo), abs=1e-6)
        assert (c.orientation.x, c.orientation.y, c.orientation.z, c.orientation.w) == (0.0, 0.0, 0.0, 1.0)
    assert to_detections_3d([], [], [], header).detections == []


def test_markers():
    from visualization_msgs.msg import Marker

    objects = _objects()
    objects[1].box_size[2] = 0.0                     # a flat object seen face-on
    header = _header()
    msg = to_markers(objects, [0.9, 0.8, 0.7], ["cup", "", "box"], header)
    first, rest = msg.markers[0], msg.markers[1:]
    assert first.action == Marker.DELETEALL and first.ns == "" and first.header == header
    assert [(m.ns, m.id, m.type) for m in rest] == [
        (ns, i, t) for i in (1, 2, 3) for ns, t in (("boxes", Marker.CUBE), ("labels", Marker.TEXT_VIEW_FACING))]
    for k, o in enumerate(objects):
        box, text = rest[2 * k], rest[2 * k + 1]
        colour = conv.PALETTE[o.object_id % len(conv.PALETTE)] / 255.0
        for m in (box, text):
            assert m.header == header and m.action == Marker.ADD
            assert (m.color.r, m.color.g, m.color.b) == pytest.approx(tuple(colour)) and m.color.a > 0
        p = box.pose.position
        assert (p.x, p.y, p.z) == pytest.approx(tuple(o.box_center))
        assert (box.scale.x, box.scale.y, box.scale.z) == pytest.approx(tuple(np.maximum(o.box_size, MIN_BOX_SCALE)))
        assert text.pose.position.y < p.y - box.scale.y / 2       # above the box (optical y points down)
    assert rest[3].scale.z > 0 and rest[2].scale.z == pytest.approx(MIN_BOX_SCALE)
    assert [rest[2 * k + 1].text for k in range(3)] == ["1 cup 0.90", "2 0.80", "3 box 0.70"]
    assert marker_text(12, "", 0.456) == "12 0.46"
    (only,) = to_markers([], [], [], header).markers
    assert only.action == Marker.DELETEALL


class _Publisher:
    """Records what the node would publish (stands in for a lifecycle publisher: no process in this module)."""

    def __init__(self) -> None:
        self.sent: list = []

    def publish(self, msg) -> None:
        self.sent.append(msg)


def test_publish_one_paired_frame():
    import dataclasses

    scene, camera, frame = _scene()
    log, stats = _Log(), NodeStats()
    settings = Settings(use_depth=True)
    outputs = DepthOutputs(settings, stats, log)
    pubs = {name: _Publisher() for name in ("points", "detections_3d", "markers")}
    header = _header()
    f = ReceivedFrame(stamp_ns=5_000_000_123, header=header, rgb=frame.rgb)
    out = _outputs(frame)
    outputs.publish(f, out, ["a", "b", "c"], _info(camera.intrinsics), pubs, settings)   # no partner: nothing
    assert not any(p.sent for p in pubs.values()) and not log.lines
    f.depth = _depth_msg(camera.render(frame, "16UC1", 0.5).depth, "16UC1")
    outputs.publish(f, out, ["a", "b", "c"], None, pubs, settings)                       # no camera_info yet
    assert log.lines[-1].startswith("3-D outputs skipped: no camera_info received yet")
    assert not any(p.sent for p in pubs.values())
    outputs.publish(f, out, ["a", "b", "c"], _info(camera.intrinsics), pubs, settings)
    cloud, dets, markers = (pubs[n].sent[-1] for n in ("points", "detections_3d", "markers"))
    assert cloud.header == dets.header == markers.markers[0].header == header
    assert [d.id for d in dets.detections] == ["1", "2", "3"]
    assert [d.results[0].hypothesis.class_id for d in dets.detections] == ["a", "b", "c"]
    assert markers.markers[2].text == f"1 a {out.iou[0]:.2f}"
    assert set(np.unique(np.frombuffer(bytes(cloud.data), READ_DTYPE)["label"])) == {1, 2, 3}
    assert stats.geometry.take()[0] > 0
    off = dataclasses.replace(settings, publish_points=False, publish_markers=False)
    outputs.publish(f, out, ["a", "b", "c"], _info(camera.intrinsics), pubs, off)
    assert [len(pubs[n].sent) for n in ("points", "detections_3d", "markers")] == [1, 2, 1]
    outputs.publish(f, out, ["a"], _info(camera.intrinsics), pubs, settings)            # a bug's exception
    assert log.lines[-1].startswith("3-D outputs failed: IndexError")
