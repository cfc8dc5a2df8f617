"""Strict, safe loading of SAM 2 weights (Meta's `{"model": state_dict}` files or a bare state dict)."""
from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

_SHOWN = 8  # keys named in an error message before "... and N more"


def _name_some(keys: list[str]) -> str:
    """'a, b, c ... and 12 more' for an error message."""
    head = ", ".join(keys[:_SHOWN])
    return head if len(keys) <= _SHOWN else f"{head} ... and {len(keys) - _SHOWN} more"


def read_safely(path: str | os.PathLike) -> Any:
    """torch.load with weights_only=True (tensors and plain containers only) and an error a user can act on; every
    file this project reads (checkpoints, training resume files) goes through here."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # weights_only refuses arbitrary pickled objects
        detail = next((line.strip() for line in str(err).splitlines() if "WeightsUnpickler error" in line), "")
        raise ValueError(f"refusing checkpoint {os.fspath(path)!r}: it pickles objects other than tensors and plain "
                         f"containers, which safe (weights_only) loading does not execute. {detail}") from err
    except (RuntimeError, EOFError) as err:
        raise ValueError(f"cannot read checkpoint {os.fspath(path)!r}: {err}") from err


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint file safely (read_safely) and return its state dict."""
    blob = read_safely(path)
    if isinstance(blob, Mapping) and "model" in blob and isinstance(blob["model"], Mapping):
        blob = blob["model"]  # Meta's release layout
    if not isinstance(blob, Mapping) or not all(isinstance(v, torch.Tensor) for v in blob.values()):
        raise ValueError(f"checkpoint {os.fspath(path)!r} is neither {{'model': state_dict}} nor a state dict of tensors")
    return dict(blob)


def check_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Raise ValueError unless `state` has exactly the model's keys with the model's shapes."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} (checkpoint {tuple(state[k].shape)}, model {tuple(own[k].shape)})"
                  for k in own if k in state and state[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_name_some(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_name_some(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): {_name_some(mismatched)}")
    if problems:
        raise ValueError("checkpoint does not match the model config; " + "; ".join(problems))


def load_checkpoint(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load weights strictly into `model` (in place) and return it; any key or shape difference is a ValueError."""
    state = read_state_dict(path)
    check_state_dict(model, state)
    model.load_state_dict(state, strict=True)
    return model


def weights_hash(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """sha256 hex digest of a weights file, read in chunks (cache key for exported/compiled artefacts)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()
