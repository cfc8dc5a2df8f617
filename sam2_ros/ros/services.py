"""The node's services and their lifetime: every call is answered, whatever the lifecycle does meanwhile.

`~/add_prompt`, `~/remove_object`, `~/select_candidate`, `~/segment_everything` and `~/reset` exist from configure to
cleanup / shutdown (not only while active), so a call that comes during deactivate / activate churn is answered:
while the node is inactive at once with success=False "the node is inactive (state: ...)". A `ServiceGate` admits
calls and counts every callback until its response is sent; before the services are destroyed the gate is closed and
drained (a bounded wait), so no response is sent on a destroyed service (rclpy would raise InvalidHandle out of the
executor). The work of each call runs on the inference thread (worker.py); the callback waits for its answer.
"""
from __future__ import annotations

import threading
import traceback
from typing import Any, Callable

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.exceptions import InvalidHandle
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger

from sam2_ros.ros import decoder_outputs as dec
from sam2_ros.ros.logtext import clip
from sam2_ros.ros.prompts import PromptError, from_prompt_msg
from sam2_ros.ros.worker import JobRefused
from sam2_ros.srv import AddPrompt, RemoveObject, SegmentEverything, SelectCandidate
from sam2_ros.tracking.everything import segment_everything

SERVICE_TIMEOUT_S = 60.0  # a call whose work has not run by then is answered success=False (timeout)
DRAIN_S = 5.0             # longest wait for the calls in flight before the services are destroyed
INACTIVE = "the node is inactive (state: {})"


class ServiceGate:
    """Admits service calls while open and counts each callback from its start until its response is sent."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._in_flight = 0
        self._refusal: str | None = INACTIVE.format("inactive")

    def enter(self) -> str | None:
        """A callback starts: None = go ahead, else the refusal to answer at once. Counted either way (the refusal
        is also a response to send); `leave` ends it."""
        with self._cond:
            self._in_flight += 1
            return self._refusal

    def leave(self) -> None:
        """A callback's response was sent (or could not be)."""
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    def open(self) -> None:
        """Admit calls (the node is active)."""
        with self._cond:
            self._refusal = None

    def close(self, refusal: str) -> None:
        """Answer new calls with `refusal` at once."""
        with self._cond:
            self._refusal = refusal

    def drain(self, timeout: float = DRAIN_S) -> bool:
        """Wait until no callback is in flight; False when `timeout` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._in_flight == 0, timeout)


class NodeServices:
    """The five services of one configured node: created by `create`, answered through the gate, destroyed by
    `destroy`. Handlers queue their work on the node's inference thread and wait for its answer."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.gate = ServiceGate()
        self._group = ReentrantCallbackGroup()
        self._services: list[Any] = []

    # ---------------------------------------------------------------- lifetime
    def create(self, depth: int) -> None:
        """Create the services (at configure) with request / response queues of `depth` (bursts of that many
        calls per service wait in DDS instead of being dropped), in a reentrant group (calls run concurrently; the
        work itself is serialised on the inference thread); the gate starts closed (inactive)."""
        qos = QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)
        table = (
            (Trigger, "~/reset", self._reset),
            (RemoveObject, "~/remove_object", self._remove),
            (AddPrompt, "~/add_prompt", self._add_prompt),
            (SelectCandidate, "~/select_candidate", self._select_candidate),
            (SegmentEverything, "~/segment_everything", self._segment_everything),
        )
        self.gate.close(INACTIVE.format("inactive"))
        for srv_type, name, handler in table:
            srv = self.node.create_service(srv_type, name, self._callback(name, handler), qos_profile=qos,
                                           callback_group=self._group)
            self._send_then_leave(srv)
            self._services.append(srv)

    def destroy(self, state: str) -> None:
        """Close the gate (new calls: "inactive (state: `state`)"), wait for the calls in flight, destroy."""
        self.gate.close(INACTIVE.format(state))
        if not self.gate.drain():
            self.node.get_logger().warning(f"{state}: service calls still in flight after {DRAIN_S:g} s; their "
                                           "answers may be lost")
        for srv in self._services:
            self.node.destroy_service(srv)
        self._services = []

    def _send_then_leave(self, srv: Any) -> None:
        """The executor sends a callback's response with `srv.send_response` after the callback returns: the gate
        counts the call until then, and a response that finds the service destroyed is logged, not raised."""
        send = srv.send_response

        def send_response(response: Any, header: Any) -> None:
            try:
                send(response, header)
            except InvalidHandle:
                self.node.get_logger().warning(f"{srv.srv_name}: answer lost, the service was destroyed")
            finally:
                self.gate.leave()
        srv.send_response = send_response

    def _callback(self, name: str, handler: Callable[[Any, Any], tuple[bool, str]]) -> Callable[[Any, Any], Any]:
        """The rclpy callback of service `name`: refuse at once when the gate says so, else run `handler`; whatever
        happens it returns the response, with its message clipped (outside text can be long) and logged."""
        def callback(request: Any, response: Any) -> Any:
            refusal = self.gate.enter()  # the gate counts this call until send_response (it must not raise)
            try:
                if refusal is not None:
                    response.success, response.message = False, refusal
                    self.node.warn(f"{name} refused while inactive", f"{name} refused: {refusal}")
                    return response
                response.success, response.message = handler(request, response)
                response.message = clip(response.message)
                if response.success:  # two call sites: rclpy refuses one that logs at two severities
                    self.node.get_logger().info(f"{name}: {response.message}")
                else:
                    self.node.get_logger().warning(f"{name} refused: {response.message}")
            except Exception as err:  # never out of the executor: the caller gets the error
                response.success, response.message = False, clip(f"{name} failed: {type(err).__name__}: {err}")
                self.node.get_logger().error(response.message + "\n" + traceback.format_exc(limit=4))
            return response
        return callback

    # ---------------------------------------------------------------- handlers: (success, message), response filled
    def _wait(self, run: Callable[[Any, bool], Any], stamp: int = 0) -> tuple[bool, str, Any]:
        """Queue `run` on the inference thread and wait: (success, message, the job's value or None)."""
        future = self.node.worker.submit(run, stamp)
        try:
            value = future.result(timeout=SERVICE_TIMEOUT_S)
        except (ValueError, JobRefused) as err:  # a refused prompt or call, a full queue, a stop: the text says why
            return False, str(err), None
        except TimeoutError:
            return False, f"timeout: not answered within {SERVICE_TIMEOUT_S:g} s (the work still completes)", None
        except Exception as err:
            return False, f"{type(err).__name__}: {err}", None
        return True, value[0], value

    def _add_prompt(self, request: Any, response: Any) -> tuple[bool, str]:
        node, spec = self.node, from_prompt_msg(request.prompt, "~/add_prompt")
        ok, message, value = self._wait(lambda frame, found: node.apply_prompt(spec, frame, found), spec.stamp)
        if value is None:
            response.masks.header = request.prompt.header
            return ok, message
        response.masks = value[1]
        if value[2] is not None:
            response.candidates, response.candidate_stability = value[2]
        return ok, message

    def _remove(self, request: Any, response: Any) -> tuple[bool, str]:
        node, object_id = self.node, int(request.object_id)

        def run(frame, found):
            if object_id not in node.registry:
                known = ", ".join(map(str, sorted(node.registry.ids))) or "none"
                raise PromptError(f"unknown object id {object_id} (tracked: {known})")
            node.engine.tracker.remove_object(object_id)
            event = node.registry.remove(object_id, frame.stamp * 1e-9, "~/remove_object")  # known: it has a frame
            node.publish_events([event], frame.header)
            return f"object {object_id} removed", None
        return self._wait(run)[:2]

    def _select_candidate(self, request: Any, response: Any) -> tuple[bool, str]:
        node, object_id, index = self.node, int(request.object_id), int(request.index)

        def run(frame, found):  # the tracker refuses an unknown object or index (ValueError) before changing anything
            result = node.engine.tracker.select_candidate(object_id, index)
            at = node.worker.frame_with_seq(result.stamp)  # the candidates' frame: its masks are published again
            masks = node.publish(at, result, want_masks=True) if at is not None else None
            return f"object {object_id}: candidate {index} selected on frame {at.stamp if at else '?'}", masks
        return self._answer(self._wait(run), response)

    def _segment_everything(self, request: Any, response: Any) -> tuple[bool, str]:
        node = self.node

        def run(frame, found):
            node.need_frame(frame, "segment everything")
            args = dec.everything_args(request, node.settings, set(node.registry.ids))
            everything = segment_everything(node.engine.tracker, frame.seq, **args)
            for object_id in everything.object_ids:
                node.object_prompted(object_id, frame, "", "~/segment_everything")
            if everything.object_ids:  # the new objects' masks are published like a prompt's
                node.publish(frame, node.engine.tracker.result(frame.seq))
            return dec.everything_answer(everything, args, frame, node.settings.mask_resolution == "low")
        return self._answer(self._wait(run), response)

    def _reset(self, request: Any, response: Any) -> tuple[bool, str]:
        node = self.node
        return self._wait(lambda frame, found: (f"reset: forgot {node.forget_objects(frame, '~/reset')} object(s)",
                                                None))[:2]

    @staticmethod
    def _answer(outcome: tuple[bool, str, Any], response: Any) -> tuple[bool, str]:
        """A job's (message, masks) into the response's masks; (success, message)."""
        ok, message, value = outcome
        if value is not None and value[1] is not None:
            response.masks = value[1]
        return ok, message
