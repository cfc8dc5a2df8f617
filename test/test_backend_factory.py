"""create_backend: each backend name, the fallback (said once) when TensorRT or a GPU is missing, and the ONNX export
cache (reused, re-exported when a file is corrupt, refused when made from other weights)."""
from __future__ import annotations

import logging
import shutil

import pytest
import torch

import sam2_ros.backends.factory as factory
from backend_util import CONFIG, scratch_dir, tiny_checkpoint, tiny_export
from sam2_ros.backends.factory import create_backend, ensure_export, resolve_backend
from sam2_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from sam2_ros.backends.tensorrt_backend import tensorrt_unavailable
from sam2_ros.model import build_sam2, weights_hash

NO_TRT = tensorrt_unavailable("cuda")


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(factory, "_warned", set())


@pytest.mark.skipif(NO_TRT is None, reason="TensorRT and a GPU are present: no fallback to observe")
def test_tensorrt_falls_back_and_says_so_once(caplog):
    with caplog.at_level(logging.WARNING, logger="sam2_ros.backends.factory"):
        first = resolve_backend("tensorrt", "cuda")
        second = resolve_backend("tensorrt", "cuda")
    expected = ("torch", torch.device("cuda")) if torch.cuda.is_available() else ("onnxruntime", torch.device("cpu"))
    print("tensorrt ->", first, "|", caplog.text.strip())
    assert first == second == expected
    messages = [r.getMessage() for r in caplog.records if "tensorrt" in r.getMessage()]
    assert len(messages) == 1 and NO_TRT in messages[0]


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown backend"):
        resolve_backend("openvino", "cpu")
    with pytest.raises(ValueError, match="precision"):
        create_backend("torch", CONFIG, image_size=256, precision="int8")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: no CPU fallback to observe")
def test_cuda_without_gpu_falls_back_to_cpu(caplog):
    with caplog.at_level(logging.WARNING, logger="sam2_ros.backends.factory"):
        assert resolve_backend("torch", "cuda") == ("torch", torch.device("cpu"))
    assert "no CUDA GPU" in caplog.text


def test_torch_backend(caplog):
    backend = create_backend("torch", CONFIG, checkpoint=str(tiny_checkpoint(256)), image_size=256, device="cpu")
    assert backend.name == "torch" and backend.config.image_size == 256


def test_onnxruntime_backend_uses_the_export_cache():
    root, export_dir = tiny_export(256)
    ckpt = str(tiny_checkpoint(256))
    stamp = (export_dir / "encode_image.onnx").stat().st_mtime_ns
    backend = create_backend("onnxruntime", CONFIG, checkpoint=ckpt, image_size=256, cache_dir=root, threads=2)
    assert isinstance(backend, OnnxRuntimeBackend) and backend.name == "onnxruntime"
    assert backend.export_dir == export_dir
    assert (export_dir / "encode_image.onnx").stat().st_mtime_ns == stamp  # not exported again
    assert backend.glue.image_encoder is None  # the big parts live only in the graphs
    # An explicit export directory must come from the same weights (here: random ones).
    with pytest.raises(ValueError, match="other weights"):
        create_backend("onnxruntime", CONFIG, image_size=256, export_dir=export_dir, cache_dir=root)


def test_export_cache_reexports_a_corrupt_part(caplog):
    """A copy of the shared export with one file truncated: only that part is exported again."""
    ckpt = tiny_checkpoint(256)
    model = build_sam2(CONFIG, checkpoint=ckpt, image_size=256)
    shared_root, shared = tiny_export(256)
    root = scratch_dir("export_cache")
    target = root / "onnx" / shared.name
    shutil.copytree(shared, target)
    victim = target / "decode.onnx"
    victim.write_bytes(victim.read_bytes()[:1000])
    untouched = (target / "encode_image.onnx").stat().st_mtime_ns
    with caplog.at_level(logging.WARNING, logger="sam2_ros.backends.factory"):
        again = ensure_export(model, weights_hash(ckpt), root)
    print(caplog.text)
    assert again == target and "checksum" in caplog.text and "re-exporting decode" in caplog.text
    assert factory.verify_export(again) is None
    assert (target / "encode_image.onnx").stat().st_mtime_ns == untouched
    assert (target / "decode.onnx").read_bytes() == (shared / "decode.onnx").read_bytes()  # deterministic export
