"""The node's services and their lifetime: every call is answered, whatever the lifecycle does meanwhile.

`~/add_prompt`, `~/remove_object`, `~/select_candidate`, `~/segment_everything` and `~/reset` exist from configure to
cleanup / shutdown (not only while active), so a call that comes during deactivate / activate churn is answered:
while the node is inactive at once with success=False "the node is inactive (state: ...)". A `ServiceGate` admits
calls and counts every callback until its response is sent; before the services are destroyed the gate is closed and
drained (a bounded wait), so no response is sent on a destroyed service (rclpy would raise InvalidHandle out of the
executor). The work of each call is a TrackingSession call on its inference thread (sam2_ros/session); the callback
only queues it and returns,
and the answer is sent when the work is done, so waiting calls hold no executor thread (a lifecycle transition is
served at once however many calls wait; unfixed, 8 busy callers delayed a deactivate by up to 17 s).
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
from sam2_ros.ros.prompt_msgs import from_prompt_msg
from sam2_ros.session import JobRefused
from sam2_ros.srv import AddPrompt, RemoveObject, SegmentEverything, SelectCandidate

DRAIN_S = 5.0             # longest wait for the calls in flight before the services are destroyed
INACTIVE = "the node is inactive (state: {})"


class ServiceGate:
    """Admits service calls while open and counts each callback from its start until its response is sent: all of
    them, and apart the admitted ones (those whose work may take a while)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._in_flight = 0
        self._admitted: set[int] = set()  # id() of the responses of admitted calls not yet sent
        self._refusal: str | None = INACTIVE.format("inactive")

    def enter(self, token: int = 0) -> str | None:
        """A callback starts (`token`: its response's id): None = admitted, else the refusal to answer at once.
        Counted either way (a refusal is also a response to send); `leave(token)` ends it."""
        with self._cond:
            self._in_flight += 1
            if self._refusal is None:
                self._admitted.add(token)
            return self._refusal

    def leave(self, token: int = 0) -> None:
        """A callback's response was sent (or could not be)."""
        with self._cond:
            self._in_flight -= 1
            self._admitted.discard(token)
            self._cond.notify_all()

    def open(self) -> None:
        """Admit calls (the node is active)."""
        with self._cond:
            self._refusal = None

    def close(self, refusal: str) -> None:
        """Answer new calls with `refusal` at once."""
        with self._cond:
            self._refusal = refusal

    def drain(self, timeout: float = DRAIN_S, refused_timeout: float = 0.5) -> bool:
        """Wait until no admitted call is in flight (up to `timeout`), then until no call at all is (up to
        `refused_timeout`: refusals take microseconds, but callers that keep calling can always have one in flight);
        False when a wait ran out."""
        with self._cond:
            admitted = self._cond.wait_for(lambda: not self._admitted, timeout)
            return self._cond.wait_for(lambda: self._in_flight == 0, refused_timeout) and admitted


class _Call:
    """An admitted call between its callback and its answer: whether its work is done, and the executor's header
    and send function once the callback has returned."""

    def __init__(self) -> None:
        self.done = False
        self.header: Any = None
        self.deliver: Callable[[Any, Any], None] | None = None


class NodeServices:
    """The five services of one configured node: created by `create`, answered through the gate, destroyed by
    `destroy`. Handlers queue their work on the node's inference thread and wait for its answer."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.gate = ServiceGate()
        self._group = ReentrantCallbackGroup()
        self._services: list[Any] = []
        self._lock = threading.Lock()
        self._calls: dict[int, _Call] = {}  # id(response) -> its call, from the callback until the answer is sent

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
        """The executor sends what a callback returns with `srv.send_response(response, header)` right after it: for
        a call whose work is still queued that only records the header, and the answer goes out when the work is done
        (`_finish`, any thread). So a call holds no executor thread while it waits: lifecycle transitions, images and
        other calls keep running however many calls wait. A response that finds the service destroyed is logged."""
        send = srv.send_response

        def deliver(response: Any, header: Any) -> None:
            try:
                send(response, header)
            except InvalidHandle:
                self.node.get_logger().warning(f"{srv.srv_name}: answer lost, the service was destroyed")
            finally:
                self.gate.leave(id(response))

        def send_response(response: Any, header: Any) -> None:
            with self._lock:
                call = self._calls.get(id(response))
                if call is not None and not call.done:
                    call.header, call.deliver = header, deliver  # `_finish` sends it
                    return
                self._calls.pop(id(response), None)
            deliver(response, header)
        srv.send_response = send_response

    def _callback(self, name: str, handler: Callable[[Any, Any, Callable], None]) -> Callable[[Any, Any], Any]:
        """The rclpy callback of service `name`: refuse at once when the gate says so, else start `handler`, which
        queues its work and calls `done(success, message)` when it is over (on the inference thread, or at once);
        whatever happens the caller gets an answer, with its message clipped (outside text can be long) and logged."""
        def callback(request: Any, response: Any) -> Any:
            refusal = self.gate.enter(id(response))  # counted until the answer is sent (it must not raise)
            if refusal is not None:
                response.success, response.message = False, refusal
                self.node.warn(f"{name} refused while inactive", f"{name} refused: {refusal}")
                return response
            with self._lock:
                self._calls[id(response)] = _Call()

            def done(ok: bool, message: str) -> None:
                self._finish(name, response, ok, message)
            try:
                handler(request, response, done)
            except Exception as err:  # never out of the executor: the caller gets the error
                self.node.get_logger().error(f"{name} failed: {type(err).__name__}: {err}\n"
                                             + traceback.format_exc(limit=4))
                done(False, f"{name} failed: {type(err).__name__}: {err}")
            return response
        return callback

    def _finish(self, name: str, response: Any, ok: bool, message: str) -> None:
        """A call's work is over: fill, log, and send the answer if the executor has handed over its header."""
        response.success, response.message = ok, clip(message)
        if ok:  # two call sites: rclpy refuses one that logs at two severities
            self.node.get_logger().info(f"{name}: {response.message}")
        else:
            self.node.get_logger().warning(f"{name} refused: {response.message}")
        with self._lock:
            call = self._calls.get(id(response))
            if call is None:
                return
            call.done = True
            if call.deliver is None:  # the callback has not returned yet: the executor sends it
                return
            del self._calls[id(response)]
        call.deliver(response, call.header)

    # ---------------------------------------------------------------- handlers: queue the work, then done(ok, message)
    def _submit(self, run: Callable[[Any, bool], Any], then: Callable[[bool, str, Any], None],
                stamp_ns: int = 0) -> None:
        """Queue `run` on the session's inference thread; `then(success, message, the job's value or None)` when it is
        over (the value: a PromptAnswer, or a (message, masks) pair)."""
        def over(future: Any) -> None:
            err = future.exception()
            if err is None:
                value = future.result()
                then(True, value.message if hasattr(value, "message") else value[0], value)
            elif isinstance(err, (ValueError, JobRefused)):  # a refused prompt or call, a full queue, a stop
                then(False, str(err), None)
            else:
                then(False, f"{type(err).__name__}: {err}", None)
        self.node.session.submit(run, stamp_ns).add_done_callback(over)

    def _add_prompt(self, request: Any, response: Any, done: Callable[[bool, str], None]) -> None:
        node, prompt = self.node, from_prompt_msg(request.prompt, "~/add_prompt")

        def then(ok: bool, message: str, answer: Any) -> None:
            if answer is None:
                response.masks.header = request.prompt.header
            else:
                node.stats.prompts.add(answer.ms)
                response.masks = answer.masks
                if answer.result.candidates is not None:
                    response.candidates, response.candidate_stability = dec.candidate_masks(
                        answer.result.candidates, answer.result, answer.frame.header,
                        node.settings.mask_resolution == "low", answer.label)
            done(ok, message)
        session = node.session
        self._submit(lambda frame, found: session.apply_prompt(prompt, frame, found), then, prompt.stamp_ns)

    def _remove(self, request: Any, response: Any, done: Callable[[bool, str], None]) -> None:
        session, object_id = self.node.session, int(request.object_id)
        self._submit(lambda frame, found: (session.remove_object(object_id, frame), None),
                     lambda ok, message, value: done(ok, message))

    def _select_candidate(self, request: Any, response: Any, done: Callable[[bool, str], None]) -> None:
        session, object_id, index = self.node.session, int(request.object_id), int(request.index)
        self._submit(lambda frame, found: session.select_candidate(object_id, index), self._answer(response, done))

    def _segment_everything(self, request: Any, response: Any, done: Callable[[bool, str], None]) -> None:
        node, session = self.node, self.node.session

        def run(frame, found):
            everything, args, frame = session.segment_everything(
                frame, lambda tracked: dec.everything_args(request, node.settings, tracked))
            return dec.everything_answer(everything, args, frame, node.settings.mask_resolution == "low")
        self._submit(run, self._answer(response, done))

    def _reset(self, request: Any, response: Any, done: Callable[[bool, str], None]) -> None:
        session = self.node.session
        self._submit(lambda frame, found: (f"reset: forgot {session.forget(frame, '~/reset')} object(s)", None),
                     lambda ok, message, value: done(ok, message))

    @staticmethod
    def _answer(response: Any, done: Callable[[bool, str], None]) -> Callable[[bool, str, Any], None]:
        """A job's (message, masks) into the response's masks, then done."""
        def then(ok: bool, message: str, value: Any) -> None:
            if value is not None and value[1] is not None:
                response.masks = value[1]
            done(ok, message)
        return then
