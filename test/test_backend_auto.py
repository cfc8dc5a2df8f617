"""`backend: auto` (the default) and the node's engine: what auto picks, the ONNX export made once and reused
(the first start says how long it took), seeded random weights, and the node's settings reaching the backend
(`cpu_threads` -> ONNX Runtime threads, `max_objects` -> TensorRT profile)."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

import sam2_ros.backends.factory as factory
import sam2_ros.backends.tensorrt_backend as trt_backend
from sam2_ros.backends.factory import create_backend, default_precision, resolve_backend
from sam2_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from sam2_ros.session.engine import build_engine
from sam2_ros.ros.params import Settings

MICRO = str(Path(__file__).resolve().parents[1] / "models" / "sam2_micro.pt")
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: auto picks it, not the CPU")


class RosLoggerStandIn:
    """Collects what build_engine forwards to the node's logger (the rclpy logger's info/warning methods)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, text: str) -> None:
        self.lines.append("INFO " + text)

    def warning(self, text: str) -> None:
        self.lines.append("WARN " + text)


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(factory, "_warned", set())
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # build_engine applies cpu_threads to this process


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("auto_cache")


@NO_GPU
def test_auto_picks_onnxruntime_on_a_cpu(caplog):
    with caplog.at_level(logging.INFO, logger="sam2_ros.backends.factory"):
        assert resolve_backend("auto", "auto") == ("onnxruntime", torch.device("cpu"))
        assert resolve_backend("auto", "cuda") == ("onnxruntime", torch.device("cpu"))  # no GPU: said once
    assert "backend auto: onnxruntime on cpu" in caplog.text and "no CUDA GPU" in caplog.text
    assert resolve_backend("auto", "cpu") == ("onnxruntime", torch.device("cpu"))


def test_default_precision_per_backend():
    assert default_precision("tensorrt", torch.device("cuda")) == "fp16"
    assert default_precision("onnxruntime", torch.device("cpu")) == "fp32"
    assert default_precision("torch", torch.device("cpu")) == "fp32"


def test_random_weights_are_the_same_every_start():
    """No checkpoint: seeded weights, so the cached export of one start is the next start's too."""
    a, b = (create_backend("torch", "sam2_micro", image_size=64, device="cpu").model.state_dict() for _ in range(2))
    assert all(torch.equal(a[k], b[k]) for k in a)


@NO_GPU
def test_auto_exports_once_then_reuses_the_cache(cache_root, caplog):
    with caplog.at_level(logging.INFO, logger="sam2_ros.backends.factory"):
        first = create_backend("auto", "sam2_micro", checkpoint=MICRO, image_size=128, cache_dir=cache_root, threads=1)
    first_log = caplog.text
    caplog.clear()
    assert isinstance(first, OnnxRuntimeBackend) and first.name == "onnxruntime" and first.threads == 1
    assert "exporting sam2_micro@128 to ONNX" in first_log and "exported sam2_micro@128 to ONNX in" in first_log
    stamp = (first.export_dir / "metadata.json").stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="sam2_ros.backends.factory"):
        second = create_backend("auto", "sam2_micro", checkpoint=MICRO, image_size=128, cache_dir=cache_root)
    print(first_log.strip().splitlines()[-1], "|", caplog.text.strip())
    assert second.export_dir == first.export_dir and "exporting" not in caplog.text
    assert "using cached ONNX export" in caplog.text
    assert (second.export_dir / "metadata.json").stat().st_mtime_ns == stamp


@NO_GPU
def test_engine_passes_cpu_threads_and_names_what_runs(cache_root, monkeypatch):
    monkeypatch.setenv("SAM2_ROS_CACHE", str(cache_root))
    settings = Settings(model_config="sam2_micro", checkpoint=MICRO, image_size=128, cpu_threads=1, prompt_history=4)
    build_engine(settings, RosLoggerStandIn())  # exports, unless a test before it did (tests may run in any order)
    log = RosLoggerStandIn()
    engine = build_engine(settings, log)
    assert engine.backend == "onnxruntime" and engine.device == "cpu"  # auto is the default
    assert engine.tracker.backend.threads == 1
    assert any("backend auto: onnxruntime" in line for line in log.lines), log.lines
    assert any("using cached ONNX export" in line for line in log.lines), log.lines  # the first build's export
    assert engine.info()["backend"] == "onnxruntime" and engine.seconds > 0
    assert not logging.getLogger("sam2_ros").handlers, "the forwarding handler is removed after the build"


def test_max_objects_reaches_the_tensorrt_profile_with_a_stand_in_backend(cache_root, monkeypatch):
    """TensorRT cannot run here: a stand-in records what create_backend hands the TensorRT backend."""
    seen = {}

    class TensorRTStandIn:
        def __init__(self, export_dir, glue, device, precision, cache_dir, limits):
            seen.update(precision=precision, limits=limits, export_dir=export_dir)
            raise RuntimeError("stand-in: no TensorRT here")

    monkeypatch.setattr(factory, "resolve_backend", lambda name, device: ("tensorrt", torch.device("cpu")))
    monkeypatch.setattr(trt_backend, "TensorRTBackend", TensorRTStandIn)
    monkeypatch.setenv("SAM2_ROS_CACHE", str(cache_root))
    with pytest.raises(RuntimeError, match="stand-in"):
        build_engine(Settings(backend="tensorrt", model_config="sam2_micro", checkpoint=MICRO, image_size=128,
                              max_objects=5), RosLoggerStandIn())
    assert seen["limits"].max_objects == 5 and seen["precision"] == "fp16"
