"""The `sam2` lifecycle node: camera + prompts in, per-object masks and confidences out (contract: ARCHITECTURE 3.3).

Lifecycle: configure reads the parameters, loads the model/backend and creates the publishers and services (which
answer "inactive" until activate; services.py); activate creates the subscriptions and starts the inference thread;
deactivate stops them; cleanup releases the services and the model. Only the inference thread touches the tracker
(see worker.py); callbacks convert messages and queue work.
"""
from __future__ import annotations

import dataclasses
import itertools
import time
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
from sam2_ros.objects import ObjectRegistry, apply_detections, parse_detections, track_frame
from sam2_ros.ros import conversions as conv
from sam2_ros.ros.depth_outputs import PAIRING_CAPACITY, DepthOutputs, create_publishers
from sam2_ros.ros.detections import OBJECT_PARAMS, DetectionLog, event_msgs, object_options, raw_detections
from sam2_ros.ros import decoder_outputs as dec
from sam2_ros.ros.diagnostics import NodeStats, build_status
from sam2_ros.ros.guard import guarded as _guarded
from sam2_ros.ros.logtext import Throttle, clip, held_note, kind_of
from sam2_ros.ros.params import (BY_NAME, PARAMS, Settings, declare_parameters, normalise, validate,
                                 validate_together)
from sam2_ros.ros.projection import ProjectionError, clicked_point_pixel
from sam2_ros.ros.prompts import PromptError, PromptSpec, from_click, from_prompt_msg, prompt_args, stamp_ns
from sam2_ros.ros.services import INACTIVE, NodeServices
from sam2_ros.ros.worker import Frame, InferenceWorker

try:  # tf2 is not on PyPI; in a ROS workspace it lets ~/clicked_point come from any frame
    import tf2_ros
except ImportError:
    tf2_ros = None

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class Sam2Node(LifecycleNode):
    """SAM 2 streaming segmentation as a managed ROS 2 node."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("sam2", **kwargs)
        declare_parameters(self)
        self.add_on_set_parameters_callback(self._check_params)
        self.settings = Settings()
        self.stats = NodeStats()
        self.engine = None
        self.worker: InferenceWorker | None = None
        self._pubs: dict[str, Any] = {}
        self._entities: list[Any] = []      # subscriptions, timers of the active state
        self.registry = ObjectRegistry()     # the objects: labels, status; used by the inference thread only
        self._detection_log = DetectionLog()
        self._camera_info: CameraInfo | None = None
        self._tf_buffer = None
        self._seq = itertools.count(1)
        self._throttle = Throttle()          # warnings: one per kind of problem per THROTTLE_S
        self._last_stamp = 0                 # header stamp (ns) of the last tracked frame: time jumps
        self._image_group = MutuallyExclusiveCallbackGroup()
        self._depth_group = MutuallyExclusiveCallbackGroup()
        self.depth = DepthOutputs(self.settings, self.stats, self.warn)  # use_depth: pairing + 3-D outputs
        self.service_handlers = NodeServices(self)   # from configure to cleanup; answer "inactive" unless active

    # ---------------------------------------------------------------- lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        values = {p.name: normalise(p.name, self.get_parameter(p.name).value) for p in PARAMS}
        self.settings = Settings(**values)
        self.registry = ObjectRegistry(object_options(self.settings))
        from sam2_ros.ros.engine import build_engine

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
        self.worker = InferenceWorker(self._track, self.settings.prompt_history,
                                      lambda text: self.warn("tracking failed", text), self.settings.max_queued_jobs)
        self._last_stamp = 0
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
        self.worker.start()
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
        if self.worker is not None:
            self.worker.stop(f"not handled: the node is {doing}")
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
        self.worker = None
        self.engine = None

    def shutdown(self) -> None:
        """Stop the inference thread before the context goes away (called by main on exit)."""
        if self.worker is not None:
            self.worker.stop()

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
        if any(p.name in OBJECT_PARAMS for p in params):
            try:  # one consistent set of rules, replaced as a whole (the inference thread reads it once per call)
                self.registry.options = object_options(settings)
            except ValueError as err:
                return SetParametersResult(successful=False, reason=str(err))
        self.settings = settings
        if self.worker is not None:
            self.worker.max_jobs = settings.max_queued_jobs
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
        """Convert an input message to RGB (timed) and offer it to the worker; unreadable ones are logged, dropped."""
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
        frame = Frame(stamp=stamp_ns(header.stamp), header=header, rgb=rgb, seq=next(self._seq))
        self.worker.submit_frame(frame)

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
        if self.worker is None:
            return
        raws, stamp = raw_detections(msg), stamp_ns(msg.header.stamp)
        future = self.worker.submit(lambda frame, found: self._apply_detections(raws, stamp, frame, found), stamp)
        future.add_done_callback(lambda f: f.exception() is None or
                                 self.warn(f"detections ignored: {kind_of(str(f.exception()))}",
                                           f"~/detections ignored: {f.exception()}"))

    @_guarded
    def _on_click(self, msg: PointStamped, positive: bool) -> None:
        name = "~/click" if positive else "~/click_negative"
        self._submit_prompt(from_click(self.settings.click_object_id, msg.point.x, msg.point.y, positive,
                                       stamp_ns(msg.header.stamp), name))

    @_guarded
    def _on_clicked_point(self, msg: PointStamped) -> None:
        info = self._camera_info
        if info is None:
            self.warn("clicked_point: no camera_info", "~/clicked_point ignored: no camera_info received yet")
            return
        newest = self.worker.newest() if self.worker else None
        try:
            u, v = clicked_point_pixel(msg, info, self._tf_buffer, newest.rgb.shape[:2] if newest else None)
        except ProjectionError as err:
            self.warn(f"clicked_point ignored: {kind_of(str(err))}", f"~/clicked_point ignored: {err}")
            return
        self._submit_prompt(from_click(self.settings.click_object_id, u, v, True, 0, "~/clicked_point"))

    # ---------------------------------------------------------------- inference thread
    def _track(self, frame: Frame) -> None:
        self._check_time_jump(frame)
        self.depth.pair(frame)              # depth that came with or before the colour
        t0 = time.perf_counter()
        result, events = track_frame(self.engine.tracker, self.registry, np.ascontiguousarray(frame.rgb),
                                     frame_stamp=frame.seq, stamp=frame.stamp * 1e-9)
        self.stats.inference.add((time.perf_counter() - t0) * 1e3)
        self.depth.pair(frame, final=True)  # or a little after it
        self.publish_events(events, frame.header)
        self.publish(frame, result)
        self.stats.outputs.add((time.monotonic() - frame.received) * 1e3)

    def _check_time_jump(self, frame: Frame) -> None:
        """Inference thread: a header stamp more than `time_jump_reset` s older than the last tracked frame's (a
        looping rosbag, a simulator reset) starts a new timeline: forget every object once, on this frame. Zero
        stamps (no clock) and smaller reorderings change nothing."""
        last, limit = self._last_stamp, self.settings.time_jump_reset
        if frame.stamp == 0:
            return
        self._last_stamp = frame.stamp
        back = (last - frame.stamp) * 1e-9
        if last and limit > 0 and back > limit:
            count = self.forget_objects(frame, f"time jump: stamps went back {back:.2f} s")
            self.warn("time jump", f"time jump: camera stamps went back {back:.2f} s (more than time_jump_reset "
                      f"{limit:g} s: a looping bag or a simulator reset); tracker reset, {count} object(s) forgotten")

    def publish(self, frame: Frame, result, want_masks: bool = False) -> ObjectMaskArray | None:
        """Publish the enabled outputs of one frame with its header; returns the mask array when wanted or built."""
        t0, c0 = time.perf_counter(), time.thread_time()
        s, pubs = self.settings, self._pubs
        out = conv.frame_outputs(result, s.mask_threshold, s.min_iou, self.registry.columns)
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

    def publish_events(self, events: list, header) -> None:
        """Log and publish object events on the frame with `header` (one per transition, so never many)."""
        for e in events:
            self.get_logger().info(clip(f"object {e.object_id} {clip(e.label, 80)!r} {e.kind.name}: {e.reason}"))
        if events and self._pubs and self.context.ok():
            for msg in event_msgs(events, header):
                self._pubs["events"].publish(msg)

    def object_prompted(self, object_id: int, frame: Frame, label: str = "", source: str = "~/prompt") -> None:
        """Inference thread, after the tracker accepted a prompt for `object_id` on `frame` (from any source: topics,
        services, detections' own path aside): the registry records it (ADDED for a new object, REACQUIRED for a
        LOST one; a non-empty label replaces the object's) and the event is published."""
        try:
            event = self.registry.prompted(object_id, frame.stamp * 1e-9, label, source)
        except ValueError:  # refused (max_objects): the tracker must not keep what the registry does not know
            self.engine.tracker.remove_object(object_id)
            raise
        self.publish_events([event] if event else [], frame.header)

    def forget_objects(self, frame: Frame | None, reason: str) -> int:
        """Inference thread: forget every object and frame (registry, tracker, frame history) and publish one REMOVED
        event each on `frame` (the newest; None before any); every reset goes through here. Returns the count."""
        header = frame.header if frame is not None else Header()
        events = self.registry.reset(frame.stamp * 1e-9 if frame is not None else 0.0, reason)
        self.engine.tracker.reset()
        self.worker.clear_history()
        self.depth.clear()
        self.publish_events(events, header)
        return len(events)

    def need_frame(self, frame: Frame | None, what: str) -> None:
        """Inference thread: raise PromptError unless a job has a frame to apply to; the reason says whether no image
        ever arrived or none since the last reset (frames before a reset are forgotten)."""
        if frame is not None:
            return
        if self.worker.frames_done == 0:
            raise PromptError(f"no image received yet: {what} needs a frame to apply to")
        raise PromptError(f"no frame arrived since the reset: {what} needs a frame to apply to (the "
                          f"{self.worker.frames_done} frames before the reset are forgotten)")

    def _apply_detections(self, raws: list, stamp: int, frame: Frame | None, found: bool) -> None:
        """Inference thread: one detection array on the frame its stamp names (else the newest)."""
        self.need_frame(frame, "a detection array")
        detections = parse_detections(raws, frame.rgb.shape[:2])
        applied = apply_detections(self.engine.tracker, self.registry, detections, frame_stamp=frame.seq,
                                   stamp=frame.stamp * 1e-9)
        for key, warning, text in self._detection_log.lines(applied, self.registry, found, stamp):
            self.warn(key, text, warning)
        self.publish_events(list(applied.events), frame.header)

    def apply_prompt(self, spec: PromptSpec, frame: Frame | None, found: bool) -> tuple[str, ObjectMaskArray, Any]:
        """Runs on the inference thread: check, prompt the tracker (which validates the prompt), publish; returns
        (message, masks, candidates: (ObjectMaskArray, stabilities) of a multimask prompt, else None)."""
        self.need_frame(frame, "a prompt")
        t0 = time.perf_counter()
        p = prompt_args(spec, self.registry, self.registry.options.max_objects)
        made_by = self.registry.get(p.object_id) if p.object_id in self.registry else None
        result = self.engine.tracker.add_prompt(p.object_id, points=p.points, labels=p.labels, box=p.box,
                                                mask=p.mask, stamp=frame.seq, replace=p.replace,
                                                multimask=spec.multimask)
        self.object_prompted(p.object_id, frame, spec.label, spec.source)
        masks = self.publish(frame, result, want_masks=True)
        candidates = None if result.candidates is None else dec.candidate_masks(
            result.candidates, result, frame.header, self.settings.mask_resolution == "low",
            self.registry.get(p.object_id).label)
        self.stats.prompts.add((time.perf_counter() - t0) * 1e3)
        where = "" if found else f" (stamp {spec.stamp} is not among the last {self.settings.prompt_history} " \
                                 "frames: applied to the newest)"
        if made_by is not None and made_by.label_score > 0:  # e.g. click_object_id 1 on a detector's object 1
            where += f" (refines object {p.object_id} {made_by.label!r}, made by a detection)"
        what = p.describe()
        if candidates is not None:
            what += ", candidates of IoU " + ", ".join(f"{o.iou:.3f}" for o in candidates[0].objects)
        return f"object {p.object_id} prompted on frame {frame.stamp} with {what}{where}", masks, candidates

    def _submit_prompt(self, spec: PromptSpec):
        if self.worker is None:
            return None
        future = self.worker.submit(lambda frame, found: self.apply_prompt(spec, frame, found), spec.stamp)

        def report(f) -> None:  # a topic has no answer: the log line is it (one per prompt, clipped)
            err = f.exception()
            if err is not None:
                self.get_logger().warning(clip(f"{spec.source} refused: {err}"))
            else:
                self.get_logger().info(clip(f"{spec.source}: {f.result()[0]}"))
        future.add_done_callback(report)
        return future

    # ---------------------------------------------------------------- diagnostics
    @_guarded
    def _publish_diagnostics(self) -> None:
        if "diagnostics" not in self._pubs:
            return
        info = self.engine.info() if self.engine else {}
        info["objects"] = str(len(self.registry))
        info["corrections"] = str(self.registry.corrections)  # drift-correction prompts (issue 24)
        status = build_status(f"{self.get_name()}: tracking", self.get_fully_qualified_name(), self.stats,
                              self.worker, info, active=True)
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._pubs["diagnostics"].publish(msg)
