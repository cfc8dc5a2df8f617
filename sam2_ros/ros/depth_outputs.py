"""use_depth: depth images paired with colour frames by stamp, and each paired frame's 3-D outputs (the ROS side of
sam2_ros.geometry; contract ARCHITECTURE 3.4: ~/points, ~/detections_3d, ~/markers).

Threads: the `depth` callback only checks the encoding and holds the raw message by stamp (`add`); the inference
thread pairs the frame it takes (`pair`: when it takes the frame, and once more after inference for depth that came
a little after the colour), and after the 2-D outputs decodes the partner and publishes the 3-D messages with the
colour frame's header (`publish`). A frame without a partner gets no 3-D outputs (never stale depth). Anything that
makes 3-D impossible for a frame (no camera_info, an unreadable or mis-shaped depth image) skips it with a log line.

Decisions:
- A pixel inside two overlapping masks belongs to the object that owns it in ~/label_image (the higher mask logit):
  a depth pixel sees one surface, so its point goes to one object; the clouds are disjoint (one label per point, as
  PointXYZL has) and agree with ~/label_image and ~/overlay.
- Depth of another resolution than the colour image is fine (the intrinsics are scaled, pixel-centre rule); another
  aspect ratio (> 1 % apart) is refused: registered depth covers the colour image's field of view, a cropped one
  cannot be matched pixel by pixel. The same check applies to camera_info's size (0 x 0 = the colour image's).
- Depth whose frame_id differs from the colour image's is not registered to it: refused, logged once per pair of
  frame ids.
- The cloud is built by our numpy packer (`geometry.pack_objects`), byte for byte what sensor_msgs_py's create_cloud
  writes (test/test_geometry_cloud.py, where sensor_msgs_py exists), with is_dense true (every point is finite).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sam2_ros.geometry import (
    DEPTH_ENCODINGS, DepthError, DepthPairingBuffer, GeometryParams, Intrinsics, IntrinsicsError, ObjectGeometry,
    depth_to_metres, extract_objects, pack_objects)
from sam2_ros.ros import conversions as conv
from sam2_ros.ros.logtext import kind_of
from sam2_ros.ros import stamps

PAIRING_CAPACITY = 8       # depth images held: ~0.27 s at 30 Hz, more than a frame waits in the worker's slot
ASPECT_TOLERANCE = 0.01    # relative difference of width/height ratios still counted as the same field of view
MIN_BOX_SCALE = 0.01       # m: RViz draws no cube with a zero side (a flat object seen face-on has depth extent ~0)
TEXT_HEIGHT = 0.05         # m: height of the marker text
BOX_ALPHA = 0.5
MAX_REFUSED_PAIRS = 64     # frame-id pairs remembered for the log-once rule (bounded)


def create_publishers(node, qos) -> dict[str, Any]:
    """The three 3-D outputs as lifecycle publishers of `node` (reliable, output depth), keyed like node._pubs."""
    from sensor_msgs.msg import PointCloud2
    from vision_msgs.msg import Detection3DArray
    from visualization_msgs.msg import MarkerArray

    return {"points": node.create_lifecycle_publisher(PointCloud2, "~/points", qos),
            "detections_3d": node.create_lifecycle_publisher(Detection3DArray, "~/detections_3d", qos),
            "markers": node.create_lifecycle_publisher(MarkerArray, "~/markers", qos)}


def geometry_params(settings) -> GeometryParams:
    """The node's depth parameters as the geometry core takes them (raises ValueError on a bad combination)."""
    return GeometryParams(depth_min=settings.depth_min, depth_max=settings.depth_max,
                          depth_mask_erosion=settings.depth_mask_erosion, depth_outlier_k=settings.depth_outlier_k,
                          points_voxel=settings.points_voxel)


class DepthOutputs:
    """Pairing, decoding and 3-D publishing for one configured node (inactive when use_depth is false)."""

    def __init__(self, settings, stats, warn: Callable[[str, str], None]) -> None:
        geometry_params(settings)  # refuse a bad combination at configure, not on the first frame
        self.enabled = bool(settings.use_depth)
        self.pairing: DepthPairingBuffer = DepthPairingBuffer(settings.depth_max_dt, PAIRING_CAPACITY)
        self.stats = stats
        self._warn = warn
        self._refused: set[tuple[str, str]] = set()  # (depth frame_id, colour frame_id) already logged

    # ------------------------------------------------------------------ input side
    def add(self, msg) -> None:
        """The `depth` callback: hold a depth image by stamp (raw; decoded only when a colour frame pairs with it)."""
        if msg.encoding not in DEPTH_ENCODINGS:
            self._warn("depth encoding", f"depth image refused: encoding {conv.quoted(msg.encoding)} is not a depth "
                       "encoding (16UC1 / mono16 in mm, 32FC1 in m)")
            return
        self.pairing.add(stamps.to_ns(msg.header.stamp), msg)

    def pair(self, frame, final: bool = False) -> None:
        """Give `frame` its depth partner (frame.depth) if it has none yet; `final`: the last try, counted for
        depth_paired_rate."""
        if not self.enabled:
            return
        if frame.depth is None:
            msg = self.pairing.match(frame.stamp_ns)
            if msg is not None and msg.header.frame_id != frame.header.frame_id:
                self._refuse_frame(msg.header.frame_id, frame.header.frame_id)
                msg = None
            frame.depth = msg
        if final:
            self.stats.depth_paired.add(0.0 if frame.depth is None else 1.0)

    def clear(self) -> None:
        """Forget held depth (reset, time jump, deactivate)."""
        self.pairing.clear()

    def _refuse_frame(self, depth_frame: str, colour_frame: str) -> None:
        key = (depth_frame, colour_frame)
        if key in self._refused:
            return
        if len(self._refused) >= MAX_REFUSED_PAIRS:
            self._refused.clear()
        self._refused.add(key)
        self._warn("depth frame_id", f"depth image refused: its frame_id {conv.quoted(depth_frame)} is not the "
                   f"colour image's {conv.quoted(colour_frame)} (depth must be registered to the colour camera, e.g. "
                   "RealSense aligned_depth_to_color); no 3-D outputs while they differ (logged once)")

    # ------------------------------------------------------------------ output side
    def publish(self, frame, out: conv.FrameOutputs, labels: Sequence[str], info, pubs: dict, settings) -> None:
        """The 3-D outputs of one frame that has a depth partner (else nothing), header = the colour frame's."""
        if not self.enabled or frame.depth is None:
            return
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            depth, intrinsics = decode(frame.depth, out.label.shape, info)
        except (conv.ImageError, DepthError, IntrinsicsError) as err:
            self._warn(f"3-D outputs skipped: {kind_of(str(err))}", f"3-D outputs skipped: {err}")
            return
        try:  # anything else: this frame's 3-D outputs only, never its tracking (the worker would drop the frame)
            self._publish(frame.header, out, labels, depth, intrinsics, pubs, settings)
        except Exception as err:
            self._warn(f"3-D outputs failed: {type(err).__name__}", f"3-D outputs failed: {type(err).__name__}: {err}")
            return
        self.stats.geometry.add((time.perf_counter() - t0) * 1e3)
        self.stats.geometry_cpu.add((time.thread_time() - c0) * 1e3)

    def _publish(self, header, out, labels, depth, intrinsics, pubs, settings) -> None:
        """Extract every object's geometry and publish the enabled 3-D messages."""
        objects = extract_objects(owner_masks(out), out.object_ids, depth, intrinsics, geometry_params(settings))
        by_id = {object_id: k for k, object_id in enumerate(out.object_ids)}
        iou = [float(out.iou[by_id[o.object_id]]) for o in objects]
        names = [labels[by_id[o.object_id]] for o in objects]
        if settings.publish_points:
            pubs["points"].publish(to_point_cloud(objects, header))
        if settings.publish_detections_3d:
            pubs["detections_3d"].publish(to_detections_3d(objects, iou, names, header))
        if settings.publish_markers:
            pubs["markers"].publish(to_markers(objects, iou, names, header))


def decode(msg, colour_hw: tuple[int, int], info) -> tuple[np.ndarray, Intrinsics]:
    """Depth Image + the colour image's [H, W] and CameraInfo -> ([h, w] float32 metres, NaN = invalid; intrinsics of
    the colour camera). Raises ImageError / DepthError / IntrinsicsError with the reason."""
    if info is None:
        raise IntrinsicsError("no camera_info received yet (the colour camera's calibration gives the intrinsics)")
    height, width = colour_hw
    intrinsics = Intrinsics.from_k(info.k, int(info.width) or width, int(info.height) or height)
    if not _same_aspect((intrinsics.height, intrinsics.width), colour_hw):
        raise IntrinsicsError(f"camera_info is for {intrinsics.width}x{intrinsics.height}, another aspect ratio than "
                              f"the colour image's {width}x{height}")
    depth = depth_to_metres(conv.image_to_array(msg), msg.encoding)   # [h, w]
    if not _same_aspect(depth.shape, colour_hw):
        raise DepthError(f"depth image {depth.shape[1]}x{depth.shape[0]} has another aspect ratio than the colour "
                         f"image {width}x{height} (registered depth covers the same field of view)")
    return depth, intrinsics


def _same_aspect(a_hw: tuple[int, ...], b_hw: tuple[int, ...]) -> bool:
    ratio_a, ratio_b = a_hw[1] / a_hw[0], b_hw[1] / b_hw[0]
    return abs(ratio_a - ratio_b) <= ASPECT_TOLERANCE * ratio_b


def owner_masks(out: conv.FrameOutputs) -> np.ndarray:
    """[N, H, W] bool: each object's pixels as ~/label_image assigns them (overlaps go to the higher logit)."""
    if len(out.object_ids) <= 1:
        return out.masks                                   # one object: its mask is its label pixels
    return np.stack([out.label == object_id for object_id in out.object_ids])


def to_point_cloud(objects: Sequence[ObjectGeometry], header):
    """All objects' points as one unorganised sensor_msgs/PointCloud2: x, y, z float32 + label uint32 (= object id)."""
    from sensor_msgs.msg import PointCloud2, PointField

    packed = pack_objects(objects)
    msg = PointCloud2(header=header, height=packed.height, width=packed.width, is_bigendian=packed.is_bigendian,
                      point_step=packed.point_step, row_step=packed.row_step, is_dense=packed.is_dense,
                      fields=[PointField(name=n, offset=o, datatype=d, count=c) for n, o, d, c in packed.fields])
    msg.data = packed.data   # bytes: rclpy's fast path
    return msg


def _point(xyz) -> Any:
    from geometry_msgs.msg import Point

    return Point(x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))


def to_detections_3d(objects: Sequence[ObjectGeometry], iou: Sequence[float], labels: Sequence[str], header):
    """vision_msgs/Detection3DArray: per object id = object id, one hypothesis (class_id = label, score = predicted
    IoU, pose = centroid of its points), bbox = axis-aligned box of its points (identity orientation)."""
    from geometry_msgs.msg import Vector3
    from vision_msgs.msg import Detection3D, Detection3DArray, ObjectHypothesisWithPose

    detections = []
    for o, score, label in zip(objects, iou, labels):
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id, hypothesis.hypothesis.score = label, float(score)
        hypothesis.pose.pose.position = _point(o.centroid)
        d = Detection3D(header=header, results=[hypothesis], id=str(o.object_id))
        d.bbox.center.position = _point(o.box_center)
        d.bbox.size = Vector3(x=float(o.box_size[0]), y=float(o.box_size[1]), z=float(o.box_size[2]))
        detections.append(d)
    return Detection3DArray(header=header, detections=detections)


def marker_text(object_id: int, label: str, iou: float) -> str:
    """'id label IoU' ('id IoU' without a label)."""
    return " ".join(part for part in (str(object_id), label, f"{iou:.2f}") if part)


def to_markers(objects: Sequence[ObjectGeometry], iou: Sequence[float], labels: Sequence[str], header):
    """visualization_msgs/MarkerArray for RViz: DELETEALL first (removed objects vanish), then per object a CUBE
    (ns "boxes", its box; at least MIN_BOX_SCALE per side) and a TEXT_VIEW_FACING above it (ns "labels": id, label,
    IoU), both id = object id, in the object's overlay colour (conversions.PALETTE)."""
    from std_msgs.msg import ColorRGBA
    from visualization_msgs.msg import Marker, MarkerArray

    markers = [Marker(header=header, action=Marker.DELETEALL)]   # ns '' : every namespace, in every RViz version
    for o, score, label in zip(objects, iou, labels):
        r, g, b = (float(c) / 255.0 for c in conv.PALETTE[o.object_id % len(conv.PALETTE)])
        box = Marker(header=header, ns="boxes", id=int(o.object_id), type=Marker.CUBE, action=Marker.ADD,
                     color=ColorRGBA(r=r, g=g, b=b, a=BOX_ALPHA))
        box.pose.position = _point(o.box_center)
        size = np.maximum(o.box_size, MIN_BOX_SCALE)
        box.scale.x, box.scale.y, box.scale.z = (float(v) for v in size)
        text = Marker(header=header, ns="labels", id=int(o.object_id), type=Marker.TEXT_VIEW_FACING,
                      action=Marker.ADD, color=ColorRGBA(r=r, g=g, b=b, a=1.0),
                      text=marker_text(o.object_id, label, score))
        # above the box: the optical frame's y points down
        text.pose.position = _point(o.box_center - np.array([0.0, size[1] / 2 + TEXT_HEIGHT, 0.0]))
        text.scale.z = TEXT_HEIGHT
        markers += [box, text]
    return MarkerArray(markers=markers)
