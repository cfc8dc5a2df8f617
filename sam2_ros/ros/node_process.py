"""The sam2 node (or any helper) as a child process: one place that builds its command line and environment, used
by the tests, the demo and the benchmarks alike.

    with NodeProcess(log_dir / "node.log", params={"image_size": 128}, remaps={"image": "/camera/image"}) as node:
        node.wait_ready()          # its log says "active" (configure + activate done), or it exited: AssertionError
        ...                        # talk to it (sam2_ros.ros.client.NodeClient)
    node.returncode                # SIGINT on exit; 0 is a clean shutdown

The child gets localhost-only discovery and this process's ROS_DOMAIN_ID (set `use_private_domain()` first), unbuffered
output into the log file, and the source tree on PYTHONPATH (so a checkout runs its own code).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the checkout (or site-packages for an installed copy)


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a ROS child: localhost discovery, unbuffered, the sources importable."""
    env = dict(os.environ)
    env.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE_ROOT), env.get("PYTHONPATH", "")]))
    env.update(extra or {})
    return env


def ros_value(value: Any) -> str:
    """A Python value as a `-p name:=value` literal (YAML: true/false, lists in brackets)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(ros_value(v) for v in value) + "]"
    return str(value)


def sam2_node_args(name: str = "sam2", params_file: str | os.PathLike | None = None,
                   params: Mapping[str, Any] | None = None, remaps: Mapping[str, str] | None = None) -> list[str]:
    """`python -m sam2_ros --ros-args ...` with the node name, a params file, `-p` overrides and `-r` remaps."""
    args = [sys.executable, "-m", "sam2_ros", "--ros-args", "-r", f"__node:={name}"]
    if params_file is not None:
        args += ["--params-file", str(params_file)]
    for key, value in (params or {}).items():
        args += ["-p", f"{key}:={ros_value(value)}"]
    for src, dst in (remaps or {}).items():
        args += ["-r", f"{src}:={dst}"]
    return args


class ChildProcess:
    """A child process whose stdout and stderr go to a log file (that a failing test or the demo can show)."""

    def __init__(self, args: Sequence[str], log_path: str | os.PathLike, env: Mapping[str, str] | None = None,
                 cwd: str | os.PathLike | None = None) -> None:
        self.args = list(args)
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT,
                                      env=dict(env) if env is not None else child_env(),
                                      cwd=str(cwd or SOURCE_ROOT))

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def running(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        """Everything the process wrote so far (also after `stop`)."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float) -> bool:
        """Until `text` is in the log (True), or the process exited or `timeout` s passed (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            if not self.running():
                return text in self.output()
            time.sleep(0.1)
        return text in self.output()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> int:
        """Send `sig` and wait; kill it if it does not exit in time. Returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if not self._log.closed:
            self._log.close()
        return self.popen.returncode

    def __enter__(self) -> ChildProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class NodeProcess(ChildProcess):
    """The sam2 node as a child process (`python -m sam2_ros`), configured by a params file and/or `-p` values."""

    def __init__(self, log_path: str | os.PathLike, name: str = "sam2",
                 params_file: str | os.PathLike | None = None, params: Mapping[str, Any] | None = None,
                 remaps: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None) -> None:
        self.name = name
        super().__init__(sam2_node_args(name, params_file, params, remaps), log_path, env)

    def wait_ready(self, timeout: float = 90.0, ready: str = "active") -> None:
        """Until the node's log says `ready` (it logs "active: waiting for images" after activate); AssertionError
        with its log when it exits or times out first."""
        ok = self.wait_for_output(ready, timeout)
        assert ok and self.running(), f"node {self.name} did not become {ready}:\n{self.output()[-5000:]}"
