"""Artefact cache: keys change with every input; stale keys build anew; corrupt files are rebuilt.

TensorRT is absent here, so the engine path is exercised with a fake engine file and a fake loader
(`*_fake_engine_*`); ONNX Runtime's own cache (its offline-optimised model files) is exercised for real.
"""
from __future__ import annotations

import copy
import logging

import pytest
import torch

from backend_util import CONFIG, max_abs, scratch_dir, tiny_checkpoint, tiny_export
from sam2_ros.backends.cache import ArtifactCache, cache_key
from sam2_ros.backends.exported import strip_for_glue
from sam2_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from sam2_ros.model import build_sam2

ENGINE_PARTS = {"onnx_sha256": "ab" * 32, "tensorrt": "10.3.0", "gpu": "NVIDIA H100 80GB HBM3",
                "compute_capability": "9.0", "precision": "fp16", "profile": {"curr": [[1, 256], [1, 256], [8, 256]]}}


def test_key_changes_with_each_input():
    base = cache_key(ENGINE_PARTS)
    assert base == cache_key(dict(reversed(list(ENGINE_PARTS.items()))))  # order-independent
    changed = {"onnx_sha256": "cd" * 32, "tensorrt": "10.4.0", "gpu": "NVIDIA RTX 4090", "compute_capability": "8.9",
               "precision": "bf16", "profile": {"curr": [[1, 256], [1, 256], [16, 256]]}}
    for name, value in changed.items():
        assert cache_key({**ENGINE_PARTS, name: value}) != base, name
    cache = ArtifactCache(scratch_dir("keys"))
    assert cache.path_for("trt", ENGINE_PARTS, ".engine") != cache.path_for("ort", ENGINE_PARTS, ".engine")


class FakeRuntime:
    """Stands in for TensorRT's deserialize_cuda_engine: accepts files that start with the magic header."""

    MAGIC = b"FAKE-ENGINE\n"

    def __init__(self):
        self.builds = 0

    def build(self, path):
        self.builds += 1
        path.write_bytes(self.MAGIC + b"x" * 1000)

    @classmethod
    def load(cls, path):
        data = path.read_bytes()
        if not data.startswith(cls.MAGIC):
            raise RuntimeError("could not deserialize the engine")
        return len(data)


def test_corrupt_fake_engine_is_rebuilt_without_tensorrt(caplog):
    cache = ArtifactCache(scratch_dir("fake_engines"))
    rt = FakeRuntime()
    get = lambda parts=ENGINE_PARTS: cache.get_or_build("trt", parts, ".engine", rt.build, rt.load)  # noqa: E731
    assert get() == 1012 and rt.builds == 1
    assert get() == 1012 and rt.builds == 1  # cached
    path = cache.path_for("trt", ENGINE_PARTS, ".engine")
    # 1) truncated file: size/checksum mismatch
    path.write_bytes(path.read_bytes()[:100])
    with caplog.at_level(logging.WARNING):
        assert get() == 1012 and rt.builds == 2
    assert "truncated" in caplog.text
    # 2) same size, flipped bytes: checksum mismatch
    data = bytearray(path.read_bytes())
    data[500] ^= 0xFF
    path.write_bytes(bytes(data))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert get() == 1012 and rt.builds == 3
    assert "checksum" in caplog.text
    # 3) a file whose checksum record was rewritten to match but the runtime refuses (e.g. other TensorRT build)
    path.write_bytes(b"garbage" * 10)
    cache.sidecar(path).unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert get() == 1012 and rt.builds == 4
    assert "checksum record" in caplog.text
    # 4) stale: another precision is another artefact, the old one stays untouched
    assert get({**ENGINE_PARTS, "precision": "fp32"}) == 1012 and rt.builds == 5
    assert path.exists() and cache.check(path) is None
    # 5) a fresh build the runtime cannot load is an error, not a loop
    with pytest.raises(RuntimeError, match="cannot be loaded"):
        cache.get_or_build("trt", {"x": 1}, ".engine", lambda p: p.write_bytes(b"bad"), rt.load)
    assert not list(cache.root.glob("*.tmp"))


def test_corrupt_onnxruntime_cache_is_rebuilt(caplog):
    """ONNX Runtime's optimised-model files: corrupt one, the backend rebuilds it and still computes the same."""
    _, export_dir = tiny_export(256)
    model = build_sam2(CONFIG, checkpoint=tiny_checkpoint(256), image_size=256)
    cache_dir = scratch_dir("ortcache")
    backend = OnnxRuntimeBackend(export_dir, strip_for_glue(copy.deepcopy(model)), "cpu", cache_dir, threads=2)
    gen = torch.Generator().manual_seed(0)
    args = (torch.randn(2, 64, 16, 16, generator=gen), torch.randn(2, 1, 256, 256, generator=gen) * 8,
            torch.tensor([[1.0], [-1.0]]))
    # The image embedding has C=256 channels in the tiny config.
    args = (torch.randn(2, 256, 16, 16, generator=gen),) + args[1:]
    expected = model.encode_memory(*args)
    first = backend.encode_memory(*args)
    files = sorted(cache_dir.glob("ort-*.onnx"))
    assert len(files) == 1
    cached = files[0]
    stamp = cached.stat().st_mtime_ns

    fresh = OnnxRuntimeBackend(export_dir, backend.glue, "cpu", cache_dir, threads=2)
    fresh.encode_memory(*args)
    assert cached.stat().st_mtime_ns == stamp  # reused, not rebuilt

    cached.write_bytes(b"\x08\x07not an onnx model" * 100)  # corrupt (and the checksum no longer matches)
    broken = OnnxRuntimeBackend(export_dir, backend.glue, "cpu", cache_dir, threads=2)
    with caplog.at_level(logging.WARNING):
        again = broken.encode_memory(*args)
    assert "rebuilding" in caplog.text and "ONNX Runtime graph encode_memory" in caplog.text
    assert broken.cache.check(cached) is None
    err = max(max_abs(a, b) for a, b in zip(again, expected))
    print(f"after rebuild: max abs vs torch {err:.1e}; before corruption {max_abs(first[0], expected[0]):.1e}")
    assert err <= 1e-4
    # Keys: the same graph on another runtime version or device gets another file.
    parts = broken.cache_parts("encode_memory")
    for name, value in (("onnxruntime", "0.0.0"), ("device", "other-cpu"), ("onnx_sha256", "0" * 64)):
        assert broken.cache.path_for("ort", {**parts, name: value}, ".onnx") != cached
