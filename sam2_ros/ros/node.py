"""The `sam2` lifecycle node: camera + prompts in, per-object masks and confidences out (the node reference is
docs/node.md).

Lifecycle: configure reads the parameters, loads the model/backend into a TrackingSession (sam2_ros/session: the
tracker, the objects and every rule about frames, prompts and detections, ROS-free) and creates the publishers and
services (which answer "inactive" until activate; services.py); activate creates the subscriptions and starts the
session's inference thread; deactivate stops them; cleanup releases the services and the session. The node only
converts: callbacks turn messages into session calls, and the session hands results back to the `SessionOutputs`
methods below (before_track, tracked, publish, publish_events, forgot, warn), which publish them.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray

from sam2_ros.msg import ObjectConfidenceArray, ObjectEvent, ObjectMaskArray, Prompt
from sam2_ros.objects import Event
from sam2_ros.ros import conversions as conv
from sam2_ros.ros import decoder_outputs as dec
from sam2_ros.ros import stamps
from sam2_ros.ros.depth_outputs import PAIRING_CAPACITY, DepthOutputs, create_publishers
from sam2_ros.ros.detection_msgs import OBJECT_PARAMS, event_msgs, object_options, raw_detections
from sam2_ros.ros.diagnostics import NodeStats, build_status
from sam2_ros.ros.guard import guarded as _guarded
from sam2_ros.ros.logtext import Throttle, clip, held_note, kind_of
from sam2_ros.ros.params import (BY_NAME, PARAMS, Settings, declare_parameters, normalise, validate,
                                 validate_together)
from sam2_ros.ros.projection import ProjectionError, clicked_point_pixel
from sam2_ros.ros.prompt_msgs import from_click, from_prompt_msg
from sam2_ros.ros.services import INACTIVE, NodeServices
from sam2_ros.session import PromptRequest, ReceivedFrame, SessionOptions, TrackingSession
from sam2_ros.tracking import TrackResult

try:  # tf2 is not on PyPI; in a ROS workspace it lets ~/clicked_point come from any frame
    import tf2_ros
except ImportError:
    tf2_ros = None

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


def session_options(settings: Settings) -> SessionOptions:
    """The node's parameters -> the session's own settings."""
    return SessionOptions(history=settings.prompt_history, max_jobs=settings.max_queued_jobs,
                          time_jump_reset=settings.time_jump_reset)


class Sam2Node(LifecycleNode):
    """SAM 2 streaming segmentation as a managed ROS 2 node."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("sam2", **kwargs)
        declare_parameters(self)
        self.add_on_set_parameters_callback(self._check_params)
        self.settings = Settings()
        self.stats = NodeStats()
        self.engine = None                   # the backend-built tracker and what to say about it (configure)
        self.session: TrackingSession | None = None  # tracker + objects + rules (configure -> cleanup)
        self.object_rules = object_options(self.settings)  # the detection / status rules in force (parameters)
        self._pubs: dict[str, Any] = {}
        self._entities: list[Any] = []      # subscriptions, timers of the active state
        self._camera_info: CameraInfo | None = None
        self._tf_buffer = None
        self._throttle = Throttle()          # warnings: one per kind of problem per THROTTLE_S
        self._image_group = MutuallyExclusiveCallbackGroup()
        self._depth_group = MutuallyExclusiveCallbackGroup()
        self.depth = DepthOutputs(self.settings, self.stats, self.warn)  # use_depth: pairing + 3-D outputs
        self.service_handlers = NodeServices(self)   # from configure to cleanup; answer "inactive" unless active

    # ---------------------------------------------------------------- lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        values = {p.name: normalise(p.name, self.get_parameter(p.name).value) for p in PARAMS}
        self.settings = Settings(**values)
        from sam2_ros.session.engine import build_engine

        try:
            self.depth = DepthOutputs(self.settings, self.stats, self.warn)
            self.engine = build_engine(self.settings, self.get_logger())
        except Exception as err:  # a bad checkpoint/config must leave the node unconfigured, not crash it
            self.get_logger().error(f"configure failed: {type(err).__name__}: {err}")
            return FAILURE
        e = self.engine
        self.get_logger().info(f"model {e.model} on {e.device} via {e.backend} (ready in {e.seconds:.1f} s)")
        if e.random_weights:
            self.get_logger().warning("=" * 70)
            self.get_logger().warning("NO CHECKPOINT: the model has RANDOM WEIGHTS; masks are meaningless. "
                                      "Set parameter `checkpoint` to Meta's .pt file.")
            self.get_logger().warning("=" * 70)
        out_qos = QoSProfile(depth=self.settings.output_qos_depth, reliability=ReliabilityPolicy.RELIABLE)
        self._pubs = {
            "masks": self.create_lifecycle_publisher(ObjectMaskArray, "~/masks", out_qos),
            "confidence": self.create_lifecycle_publisher(ObjectConfidenceArray, "~/confidence", out_qos),
            "label_image": self.create_lifecycle_publisher(Image, "~/label_image", out_qos),
            "overlay": self.create_lifecycle_publisher(Image, "~/overlay", out_qos),
            "events": self.create_lifecycle_publisher(
                ObjectEvent, "~/events", QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)),
            "diagnostics": self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics", 10),
        }
        if self.settings.use_depth:
            self._pubs.update(create_publishers(self, out_qos))
        self.object_rules = object_options(self.settings)
        self.session = TrackingSession(e.tracker, self, self.object_rules, session_options(self.settings))
        self.service_handlers.create(self.settings.service_qos_depth)
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        s = self.settings
        image_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=s.image_qos_depth,
                               reliability=ReliabilityPolicy.RELIABLE if s.image_reliability == "reliable"
                               else ReliabilityPolicy.BEST_EFFORT)
        sub, burst = self.create_subscription, QoSProfile(depth=s.input_qos_depth,
                                                          reliability=ReliabilityPolicy.RELIABLE)
        if s.use_compressed:
            image_sub = sub(CompressedImage, "image/compressed", self._on_compressed, image_qos,
                            callback_group=self._image_group)
        else:
            image_sub = sub(Image, "image", self._on_image, image_qos, callback_group=self._image_group)
        self._entities = [
            image_sub,
            sub(CameraInfo, "camera_info", self._on_camera_info, image_qos),
            sub(Prompt, "~/prompt", self._on_prompt, burst),
            sub(Detection2DArray, "~/detections", self._on_detections, burst),
            sub(PointStamped, "~/click", lambda m: self._on_click(m, True), burst),
            sub(PointStamped, "~/click_negative", lambda m: self._on_click(m, False), burst),
            sub(PointStamped, "~/clicked_point", self._on_clicked_point, burst),
            self.create_timer(s.diagnostics_period, self._publish_diagnostics),
        ]
        if s.use_depth:
            depth_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=max(s.image_qos_depth, PAIRING_CAPACITY),
                                   reliability=image_qos.reliability)  # late depth still pairs; the buffer bounds
            self._entities.append(sub(Image, "depth", self._on_depth, depth_qos, callback_group=self._depth_group))
            self.get_logger().info("3-D outputs from depth on " + self.resolve_topic_name("depth"))
        if tf2_ros is not None:
            self._tf_buffer = tf2_ros.Buffer()
            self._entities.append(tf2_ros.TransformListener(self._tf_buffer, self))
        self.session.start()
        self.service_handlers.gate.open()
        self.get_logger().info("active: waiting for images on " + self.resolve_topic_name(
            "image/compressed" if s.use_compressed else "image"))
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release_active("deactivating")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release_all("cleaning up")
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release_all("shutting down")
        return super().on_shutdown(state)

    def _release_active(self, doing: str) -> None:
        """Stop admitting service calls, stop the inference thread (waiting jobs are answered "not handled: the node
        is `doing`"), wait for the calls in flight to be answered, then remove subscriptions and timers."""
        t0 = time.monotonic()
        self.service_handlers.gate.close(INACTIVE.format("inactive"))
        if self.session is not None:
            self.session.stop(f"not handled: the node is {doing}")
        t1 = time.monotonic()
        self.service_handlers.gate.drain()
        self.get_logger().info(f"{doing}: inference thread stopped in {t1 - t0:.2f} s, calls in flight answered in "
                               f"{time.monotonic() - t1:.2f} s")
        for entity in self._entities:
            if isinstance(entity, Subscription):
                self.destroy_subscription(entity)
            elif isinstance(entity, Timer):
                self.destroy_timer(entity)
            else:  # tf2 listener
                entity.unregister()
        self._entities = []
        self._tf_buffer = None
        self.depth.clear()

    def _release_all(self, doing: str) -> None:
        """Stop everything, destroy the services and drop the model (frees its memory)."""
        self._release_active(doing)
        self.service_handlers.destroy(doing)
        for pub in self._pubs.values():
            self.destroy_lifecycle_publisher(pub)
        self._pubs = {}
        self.session = None
        self.engine = None

    def shutdown(self) -> None:
        """Stop the inference thread before the context goes away (called by main on exit)."""
        if self.session is not None:
            self.session.stop("not handled: the node is shutting down")

    def _check_params(self, params: list) -> SetParametersResult:
        for p in params:
            reason = validate(p.name, p.value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        after = {n: self.get_parameter(n).value for n in BY_NAME} | {p.name: p.value for p in params}
        reason = validate_together(after)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        settings = self.settings
        for p in params:  # the dynamic ones take effect now
            spec = BY_NAME.get(p.name)
            if spec is not None and spec.dynamic:
                settings = dataclasses.replace(settings, **{p.name: normalise(p.name, p.value)})
        try:  # one consistent set of rules, replaced as a whole (the inference thread reads it once per call)
            rules = object_options(settings) if any(p.name in OBJECT_PARAMS for p in params) else None
        except ValueError as err:
            return SetParametersResult(successful=False, reason=str(err))
        self.settings = settings
        self.object_rules = rules or self.object_rules
        if self.session is not None:
            self.session.set_options(session_options(settings), rules)
        return SetParametersResult(successful=True)

    # ---------------------------------------------------------------- inputs
    def warn(self, kind: str, text: str, warning: bool = True) -> None:
        """Warn (or inform) at most once per THROTTLE_S for each `kind` of problem (bad streams repeat every frame,
        each time with another frame_id or stamp), saying how many of that kind were held back; `text` is clipped."""
        ok, held = self._throttle.admit(kind)
        if ok:
            line = clip(text) + held_note(held)
            if warning:  # two call sites: rclpy refuses one call site that logs at two severities
                self.get_logger().warning(line)
            else:
                self.get_logger().info(line)

    @_guarded
    def _on_image(self, msg: Image) -> None:
        self._receive(msg, conv.image_to_rgb, "image")

    @_guarded
    def _on_compressed(self, msg: CompressedImage) -> None:
        self._receive(msg, conv.compressed_to_rgb, "compressed image")

    def _receive(self, msg, to_rgb, what: str) -> None:
        """Convert an input message to RGB (timed) and offer it to the session; unreadable ones are logged, dropped."""
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            rgb = to_rgb(msg)
        except conv.ImageError as err:
            where = msg.header.frame_id or "?"
            self.warn(f"dropping {what}: {kind_of(str(err))}", f"dropping {what} from {where}: {err}")
            return
        self.stats.convert_cpu.add((time.thread_time() - c0) * 1e3)
        self._offer(msg.header, rgb, t0)

    def _offer(self, header, rgb: np.ndarray, t0: float) -> None:
        self.stats.convert.add((time.perf_counter() - t0) * 1e3)
        self.stats.inputs.add()
        self.session.receive(stamps.to_ns(header.stamp), header, rgb)

    @_guarded
    def _on_depth(self, msg: Image) -> None:
        self.depth.add(msg)

    @_guarded
    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    @_guarded
    def _on_prompt(self, msg: Prompt) -> None:
        self._submit_prompt(from_prompt_msg(msg, "~/prompt"))

    @_guarded
    def _on_detections(self, msg: Detection2DArray) -> None:
        if self.session is None:
            return
        future = self.session.submit_detections(raw_detections(msg), stamps.to_ns(msg.header.stamp))
        future.add_done_callback(lambda f: f.exception() is None or
                                 self.warn(f"detections ignored: {kind_of(str(f.exception()))}",
                                           f"~/detections ignored: {f.exception()}"))

    @_guarded
    def _on_click(self, msg: PointStamped, positive: bool) -> None:
        name = "~/click" if positive else "~/click_negative"
        self._submit_prompt(from_click(self.settings.click_object_id, msg.point.x, msg.point.y, positive,
                                       stamps.to_ns(msg.header.stamp), name))

    @_guarded
    def _on_clicked_point(self, msg: PointStamped) -> None:
        info = self._camera_info
        if info is None:
            self.warn("clicked_point: no camera_info", "~/clicked_point ignored: no camera_info received yet")
            return
        newest = self.session.newest() if self.session else None
        try:
            u, v = clicked_point_pixel(msg, info, self._tf_buffer, newest.rgb.shape[:2] if newest else None)
        except ProjectionError as err:
            self.warn(f"clicked_point ignored: {kind_of(str(err))}", f"~/clicked_point ignored: {err}")
            return
        self._submit_prompt(from_click(self.settings.click_object_id, u, v, True, 0, "~/clicked_point"))

    def _submit_prompt(self, request: PromptRequest):
        """A prompt from a topic: queued on the session; a topic has no answer, so the log line is it (one per
        prompt, clipped)."""
        if self.session is None:
            return None
        future = self.session.submit_prompt(request)

        def report(f) -> None:
            err = f.exception()
            if err is not None:
                self.get_logger().warning(clip(f"{request.source} refused: {err}"))
            else:
                self.stats.prompts.add(f.result().ms)
                self.get_logger().info(clip(f"{request.source}: {f.result().message}"))
        future.add_done_callback(report)
        return future

    # ---------------------------------------------------------------- SessionOutputs (inference thread)
    def before_track(self, frame: ReceivedFrame) -> None:
        self.depth.pair(frame)              # depth that came with or before the colour

    def tracked(self, frame: ReceivedFrame, result: TrackResult, events: list[Event], inference_ms: float) -> None:
        self.stats.inference.add(inference_ms)
        self.depth.pair(frame, final=True)  # or a little after it
        self.publish_events(events, frame)
        self.publish(frame, result)
        self.stats.outputs.add((time.monotonic() - frame.received) * 1e3)

    def publish(self, frame: ReceivedFrame, result: TrackResult, want_masks: bool = False) -> ObjectMaskArray | None:
        """Publish the enabled outputs of one frame with its header; returns the mask array when wanted or built."""
        t0, c0 = time.perf_counter(), time.thread_time()
        s, pubs = self.settings, self._pubs
        out = conv.frame_outputs(result, s.mask_threshold, s.min_iou, self.session.registry.columns)
        masks = None
        if s.publish_masks or want_masks:
            low = dec.low_res_outputs(result, out, s.mask_threshold, s.min_iou) if s.mask_resolution == "low" else None
            masks = conv.to_mask_array(out, frame.header, low)
        if not pubs or not self.context.ok():  # shutting down: nothing to publish to
            return masks
        if s.publish_masks:
            pubs["masks"].publish(masks)
        if s.publish_confidence:
            pubs["confidence"].publish(conv.to_confidence_array(out, frame.header))
        if s.publish_label_image:
            pubs["label_image"].publish(conv.to_label_image(out, frame.header))
        if s.publish_overlay:
            pubs["overlay"].publish(conv.to_overlay_image(frame.rgb, out, frame.header, s.overlay_alpha))
        self.stats.publish.add((time.perf_counter() - t0) * 1e3)
        self.stats.publish_cpu.add((time.thread_time() - c0) * 1e3)
        self.depth.publish(frame, out, out.labels, self._camera_info, pubs, s)
        return masks

    def publish_events(self, events: Sequence[Event], frame: ReceivedFrame | None) -> None:
        """Log and publish object events on `frame` (one per transition, so never many)."""
        for e in events:
            self.get_logger().info(clip(f"object {e.object_id} {clip(e.label, 80)!r} {e.kind.name}: {e.reason}"))
        if events and self._pubs and self.context.ok():
            for msg in event_msgs(events, frame.header if frame is not None else Header()):
                self._pubs["events"].publish(msg)

    def forgot(self) -> None:
        self.depth.clear()

    # ---------------------------------------------------------------- diagnostics
    @_guarded
    def _publish_diagnostics(self) -> None:
        if "diagnostics" not in self._pubs:
            return
        info = self.engine.info() if self.engine else {}
        info["objects"] = str(len(self.session.registry)) if self.session else "0"
        info["corrections"] = str(self.session.registry.corrections) if self.session else "0"  # drift corrections
        status = build_status(f"{self.get_name()}: tracking", self.get_fully_qualified_name(), self.stats,
                              self.session.worker if self.session else None, info, active=True)
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._pubs["diagnostics"].publish(msg)
