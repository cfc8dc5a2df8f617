"""The inference thread: newest-frame-only tracking plus a queue of jobs (prompts, removals, resets), ROS-free.

Only this thread touches the tracker. The image callback drops each frame into a one-slot buffer (an older waiting
frame is replaced and counted as dropped); jobs run before the next frame, so a prompt is answered at decoder speed.
The job queue is bounded (`max_jobs`): a job beyond it is refused at once with "busy (N jobs queued)", never dropped;
jobs still waiting when the thread stops are refused with the reason given to `stop`.
"""
from __future__ import annotations

import collections
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class ReceivedFrame:
    """One received image: header stamp (ns), header (kept for the outputs), RGB pixels, sequence number, arrival."""

    stamp_ns: int  # the header's stamp; prompts and detections name their frame by it (0: no clock)
    header: Any
    rgb: Any  # [H, W, 3] uint8
    seq: int = 0  # the node's frame counter: the tracker's stamp (header stamps may repeat or be zero)
    received: float = field(default_factory=time.monotonic)
    depth: Any = None  # use_depth: the paired depth Image message, set on the inference thread (ros/depth_outputs.py)

    @property
    def time_s(self) -> float:
        """The header stamp in seconds (what the object rules count time in)."""
        return self.stamp_ns * 1e-9


class JobRefused(RuntimeError):
    """A job the inference thread did not run (queue full, stopping); the text says why, for the caller's answer."""


@dataclass
class _Job:
    run: Callable[[ReceivedFrame | None, bool], Any]  # (frame, stamp_found) -> result
    stamp_ns: int
    future: Future


class InferenceWorker:
    """Runs `track(frame)` on the newest frame and queued jobs in order, on one daemon thread."""

    def __init__(self, track: Callable[[ReceivedFrame], None], history: int,
                 on_error: Callable[[str], None] = lambda text: None, max_jobs: int = 100) -> None:
        self._track = track
        self.max_jobs = max_jobs  # jobs that may wait; read at each submit (a dynamic parameter)
        self._on_error = on_error
        self._cond = threading.Condition()
        self._pending: ReceivedFrame | None = None
        self._jobs: collections.deque[_Job] = collections.deque()
        self._history: collections.deque[ReceivedFrame] = collections.deque(maxlen=max(1, history))
        self._stop = False
        self._stop_reason = ""
        self._thread: threading.Thread | None = None
        self.frames_in = 0
        self.frames_done = 0
        self.dropped = 0
        self.busy = False

    def start(self) -> None:
        """Start the thread (idempotent). A previous thread that `stop` left finishing a long step is joined first:
        two threads must never touch the tracker."""
        if self._thread is not None and not self._stop:
            return
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        with self._cond:
            self._stop = False
            self._thread = threading.Thread(target=self._loop, name="sam2-inference", daemon=True)
        self._thread.start()

    def stop(self, reason: str = "not handled: the node is shutting down", timeout: float = 10.0) -> None:
        """Stop after the current step (joined up to `timeout` s); waiting and later jobs fail with JobRefused(reason)."""
        with self._cond:
            self._stop, self._stop_reason = True, reason
            jobs, self._jobs = list(self._jobs), collections.deque()
            self._pending = None
            self._cond.notify_all()
        for job in jobs:
            job.future.set_exception(JobRefused(reason))
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)  # a thread still in a long step ends after it; start() waits for that

    def submit_frame(self, frame: ReceivedFrame) -> None:
        """Offer a frame; it replaces a frame still waiting (counted as dropped)."""
        with self._cond:
            self.frames_in += 1
            if self._pending is not None:
                self.dropped += 1
            self._pending = frame
            self._cond.notify()

    def submit(self, run: Callable[[ReceivedFrame | None, bool], Any], stamp_ns: int = 0) -> Future:
        """Queue a job for the frame named by `stamp_ns` (0 = newest tracked). It gets (frame, found) and its result
        completes the returned future; a frame still waiting with exactly that stamp is tracked first. A full queue
        or a stopped thread completes the future at once with JobRefused."""
        future: Future = Future()
        with self._cond:
            refusal = self._stop_reason if self._stop else \
                f"busy ({len(self._jobs)} jobs queued)" if len(self._jobs) >= self.max_jobs else None
            if refusal is not None:
                future.set_exception(JobRefused(refusal))
                return future
            self._jobs.append(_Job(run, int(stamp_ns), future))
            self._cond.notify()
        return future

    def newest(self) -> ReceivedFrame | None:
        """The newest tracked frame (None before the first)."""
        with self._cond:
            return self._history[-1] if self._history else None

    def frame_with_seq(self, seq: int) -> ReceivedFrame | None:
        """The tracked frame with this sequence number (the tracker's stamp), None once it left the history."""
        with self._cond:
            return next((f for f in reversed(self._history) if f.seq == seq), None)

    def clear_history(self) -> None:
        """Forget tracked frames (after a tracker reset)."""
        with self._cond:
            self._history.clear()

    def _loop(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                while not self._stop and self._thread is me and self._pending is None and not self._jobs:
                    self._cond.wait()
                if self._stop or self._thread is not me:
                    return
                job = self._jobs.popleft() if self._jobs else None
                frame = None
                if job is None or (job.stamp_ns and self._pending is not None and self._pending.stamp_ns == job.stamp_ns):
                    frame, self._pending = self._pending, None
                self.busy = True
            try:
                if frame is not None:
                    self._run_track(frame)
                if job is not None:
                    self._run_job(job)
            finally:
                self.busy = False

    def _run_track(self, frame: ReceivedFrame) -> None:
        try:
            self._track(frame)
        except Exception as err:  # a bad frame must not stop the thread
            self._on_error(f"tracking failed on frame {frame.stamp_ns}: {type(err).__name__}: {err}")
            return
        with self._cond:
            self._history.append(frame)
            self.frames_done += 1

    def _run_job(self, job: _Job) -> None:
        with self._cond:
            frame, found = self._find(job.stamp_ns)
        try:
            job.future.set_result(job.run(frame, found))
        except Exception as err:
            job.future.set_exception(err)

    def _find(self, stamp_ns: int) -> tuple[ReceivedFrame | None, bool]:
        """(frame, True) for a known stamp or stamp 0; (newest, False) for a stamp not in the history."""
        if not self._history:
            return None, stamp_ns == 0
        if stamp_ns == 0:
            return self._history[-1], True
        for frame in reversed(self._history):
            if frame.stamp_ns == stamp_ns:
                return frame, True
        return self._history[-1], False
