"""Cache of built inference artefacts (ONNX Runtime optimised models, TensorRT engines, timing caches).

An artefact is named by a key hashed from everything it depends on (ONNX file hash, runtime version, device/GPU
name, precision, shape profile, ...): change any of them and a new artefact is built next to the old one (a stale
artefact is simply never looked up again). Each artefact has a sidecar `<file>.json` with the key's parts, its size
and sha256; a file whose checksum does not match, or that the runtime refuses to load, is deleted and rebuilt.
Writes go to a temporary name and are renamed into place, so a crash mid-build never leaves a truncated artefact.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from sam2_ros.model.checkpoint import weights_hash

logger = logging.getLogger(__name__)
T = TypeVar("T")


def default_cache_dir() -> Path:
    """$SAM2_ROS_CACHE, else $XDG_CACHE_HOME/sam2_ros, else ~/.cache/sam2_ros."""
    if os.environ.get("SAM2_ROS_CACHE"):
        return Path(os.environ["SAM2_ROS_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sam2_ros"


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 hex digest of a file, streamed (the same digest the model uses for its weights)."""
    return weights_hash(path)


def cache_key(parts: Mapping[str, Any], length: int = 24) -> str:
    """Short stable hash of the key parts (JSON with sorted keys; values must be JSON-able or have a stable str)."""
    text = json.dumps(dict(parts), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes to path through a temporary file in the same directory and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; cache files are as readable as the directory
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ArtifactCache:
    """A directory of artefacts, each validated by checksum and by a caller-supplied loader before use."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def path_for(self, kind: str, parts: Mapping[str, Any], suffix: str) -> Path:
        """Where the artefact for these key parts lives (it may not exist yet)."""
        return self.root / f"{kind}-{cache_key({'kind': kind, **parts})}{suffix}"

    @staticmethod
    def sidecar(path: Path) -> Path:
        return path.with_name(path.name + ".json")

    def check(self, path: Path) -> str | None:
        """None when the file matches its sidecar (size and sha256), else why it does not."""
        side = self.sidecar(path)
        if not path.is_file():
            return "missing"
        try:
            info = json.loads(side.read_text())
        except (OSError, ValueError):
            return "without a readable checksum record"
        if info.get("size") != path.stat().st_size:
            return f"truncated or altered ({path.stat().st_size} bytes, expected {info.get('size')})"
        if info.get("sha256") != file_sha256(path):
            return "corrupt (checksum mismatch)"
        return None

    def get_or_build(self, kind: str, parts: Mapping[str, Any], suffix: str, build: Callable[[Path], None],
                     load: Callable[[Path], T], what: str = "") -> T:
        """Load the cached artefact, or build it (build(tmp_path) writes the file) and load that.

        A cached file that fails the checksum or whose load() raises is removed and rebuilt once; a fresh build
        that cannot be loaded raises RuntimeError.
        """
        path = self.path_for(kind, parts, suffix)
        label = what or path.name
        if path.exists():
            reason = self.check(path)
            if reason is None:
                try:
                    return load(path)
                except Exception as err:  # the runtime refused the bytes: rebuild below
                    reason = f"not loadable ({type(err).__name__}: {err})"
            logger.warning("cached %s at %s is %s: rebuilding it", label, path, reason)
            self.remove(path)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        start = time.perf_counter()
        try:
            build(tmp)
            digest, size = file_sha256(tmp), tmp.stat().st_size
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        record = {"kind": kind, "parts": dict(parts), "size": size, "sha256": digest,
                  "build_seconds": round(time.perf_counter() - start, 2)}
        atomic_write(self.sidecar(path), json.dumps(record, indent=1, sort_keys=True, default=str).encode())
        try:
            return load(path)
        except Exception as err:
            raise RuntimeError(f"freshly built {label} at {path} cannot be loaded: {err}") from err

    def remove(self, path: Path) -> None:
        """Delete an artefact and its sidecar."""
        path.unlink(missing_ok=True)
        self.sidecar(path).unlink(missing_ok=True)


__all__ = ["ArtifactCache", "atomic_write", "cache_key", "default_cache_dir", "file_sha256"]
