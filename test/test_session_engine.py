"""`device` names a device that is not there (issue 19, defect 4): the node's configure fails with the reason instead
of running on the CPU while its log line and /diagnostics name the GPU; `auto` and `cpu` keep working. The library's
create_backend keeps its documented fallback for a CUDA device without a GPU (test_backend_factory.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sam2_ros.backends.factory import missing_device, resolve_backend
from sam2_ros.session.engine import build_engine
from sam2_ros.ros.params import Settings

ROOT = Path(__file__).resolve().parents[1]
MICRO = dict(model_config="sam2_micro", checkpoint=str(ROOT / "models" / "sam2_micro.pt"), image_size=256,
             backend="torch", cpu_threads=1)
ABSENT = f"cuda:{max(7, torch.cuda.device_count())}"  # an ordinal this machine does not have


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, text: str) -> None:
        self.lines.append(text)

    def warning(self, text: str) -> None:
        self.lines.append(text)


def test_missing_device_says_why():
    assert missing_device("auto") is None and missing_device("cpu") is None
    reason = missing_device(ABSENT)
    assert reason is not None and ABSENT in reason
    assert ("no CUDA GPU" in reason) == (not torch.cuda.is_available())
    if not torch.cuda.is_available():
        assert "no CUDA GPU" in missing_device("cuda")
    else:
        assert missing_device("cuda") is None and missing_device("cuda:0") is None
    assert "not a torch device" in missing_device("cuda:x")


def test_engine_refuses_a_device_that_does_not_exist():
    with pytest.raises(ValueError) as err:
        build_engine(Settings(device=ABSENT, **MICRO), _Log())
    print(err.value)
    assert ABSENT in str(err.value) and "set device to auto" in str(err.value)
    engine = build_engine(Settings(device="auto", **MICRO), _Log())  # what runs is what is reported
    assert engine.device == ("cuda:0" if torch.cuda.is_available() else "cpu")
    assert engine.info()["device"] == engine.device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU: the library's CPU fallback applies instead")
def test_library_refuses_an_absent_gpu_ordinal():
    with pytest.raises(ValueError, match=ABSENT):
        resolve_backend("torch", ABSENT)


def test_node_configure_fails_and_stays_unconfigured():
    """The real node in this process: configure with an absent device is refused (unconfigured, nothing loaded);
    with device cpu the same node then configures."""
    import rclpy
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from sam2_ros.ros.node import Sam2Node

    context = rclpy.Context()
    rclpy.init(context=context, args=["--ros-args", "-p", "autostart:=false"])
    node = Sam2Node(context=context)
    try:
        node.set_parameters([Parameter(k, value=v) for k, v in MICRO.items()] + [Parameter("device", value=ABSENT)])
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert node._state_machine.current_state[1] == "unconfigured" and node.engine is None
        node.set_parameters([Parameter("device", value="cpu")])
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node._state_machine.current_state[1] == "inactive" and node.engine.device == "cpu"
        node.trigger_cleanup()
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
