"""The inference thread's job queue (issue 19): bounded, refuses with a reason instead of dropping; a stop answers
the waiting jobs with the stop's reason; a restart never runs two threads."""
from __future__ import annotations

import threading
import time

import pytest

from sam2_ros.session.worker import InferenceWorker, JobRefused, ReceivedFrame


def _blocked_worker(max_jobs: int):
    """A started worker whose thread is held inside a job until the returned event is set."""
    release, running = threading.Event(), threading.Event()
    worker = InferenceWorker(lambda frame: None, history=4, max_jobs=max_jobs)
    worker.start()

    def hold(frame, found):
        running.set()
        release.wait(10)
        return "held"
    first = worker.submit(hold)
    assert running.wait(10)
    return worker, release, first


def test_a_full_queue_refuses_with_busy_and_drops_nothing():
    worker, release, first = _blocked_worker(max_jobs=3)
    futures = [worker.submit(lambda frame, found, k=k: k) for k in range(5)]
    refused = [f for f in futures[3:]]
    for f in refused:
        with pytest.raises(JobRefused, match=r"^busy \(3 jobs queued\)$"):
            f.result(0)
    release.set()
    assert first.result(10) == "held" and [f.result(10) for f in futures[:3]] == [0, 1, 2]
    worker.max_jobs = 5  # a dynamic parameter: read at each submit
    assert worker.submit(lambda frame, found: "ok").result(10) == "ok"
    worker.stop()


def test_stop_answers_waiting_jobs_with_its_reason():
    worker, release, first = _blocked_worker(max_jobs=10)
    waiting = worker.submit(lambda frame, found: "never")
    stopper = threading.Thread(target=worker.stop, args=("not handled: the node is deactivating",))
    stopper.start()
    with pytest.raises(JobRefused, match="^not handled: the node is deactivating$"):
        waiting.result(10)
    with pytest.raises(JobRefused, match="deactivating"):
        worker.submit(lambda frame, found: "later").result(0)
    release.set()
    stopper.join(10)
    assert first.result(10) == "held"  # the running job finishes
    worker.start()
    assert worker.submit(lambda frame, found: "again").result(10) == "again"
    worker.stop()


def test_restart_while_a_long_step_runs_waits_for_it():
    """stop() gives up joining after its timeout; start() must then wait: one thread touches the tracker."""
    inside, release = [], threading.Event()
    lock = threading.Lock()

    def track(frame):
        with lock:
            inside.append(threading.current_thread())
        release.wait(10)

    worker = InferenceWorker(track, history=4)
    worker.start()
    worker.submit_frame(ReceivedFrame(stamp_ns=1, header=None, rgb=None, seq=1))
    time.sleep(0.2)
    worker.stop(timeout=0.1)           # the step is still running
    threading.Timer(0.3, release.set).start()
    worker.start()                     # returns once the old thread ended
    assert not any(t.is_alive() and t is not worker._thread for t in inside)
    worker.submit_frame(ReceivedFrame(stamp_ns=2, header=None, rgb=None, seq=2))
    time.sleep(0.3)
    assert len(inside) == 2 and inside[0] is not inside[1] and not inside[0].is_alive()
    worker.stop()
