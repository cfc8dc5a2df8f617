#!/usr/bin/env bash
# Builds build/edgetam_oracle/: Meta's EdgeTAM code (PyPI `edgetam-dimos`, no weights) as a TEST ORACLE, in its own
# --target directory because it installs a top-level `sam2` that would shadow the SAM 2 oracle (`sam2` 1.1.0) in .venv.
# Tests run it in a subprocess with PYTHONPATH=build/edgetam_oracle (test/edgetam_oracle.py); the product never
# imports it. edgetam-dimos needs timm (undeclared), timm needs torchvision: torchvision 0.28.0 is the release built
# for torch 2.13.0 (its wheel pins torch==2.13.0). PyPI has only its CUDA build, whose compiled ops do not load
# against torch 2.13.0+cpu (libtorch_cuda missing); only its Python part is needed (see the check below).
# Everything is installed --no-deps: torch, numpy, hydra, iopath, pillow come from .venv. Idempotent (stamp file).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON_VENV:-$root/.venv/bin/python}"
target="$root/build/edgetam_oracle"
pins="edgetam-dimos==1.0.1 timm==1.0.31 torchvision==0.28.0"
stamp="$target/.stamp"
if [ "$(cat "$stamp" 2>/dev/null)" = "$pins" ]; then
  echo "[setup] EdgeTAM oracle up to date ($target)"; exit 0
fi
echo "[setup] EdgeTAM oracle ($pins) into $target"
rm -rf "$target"
mkdir -p "$target"
# shellcheck disable=SC2086
PIP_DISABLE_PIP_VERSION_CHECK=1 "$python" -m pip install -q --no-deps --target "$target" $pins
# Check it works as the tests use it: EdgeTAM's sam2 (not 1.1.0), timm's RepViT, torchvision's ops.
PYTHONPATH="$target" "$python" - <<'EOF'
import torch
# PyPI's torchvision is a CUDA build: its compiled ops do not load against torch+cpu, and its import then fails
# registering fake kernels for two ops. Declaring their schemas (no kernels) lets the Python part import; timm and
# EdgeTAM call no torchvision op (test/edgetam_oracle.py does the same in its child process).
lib = torch.library.Library("torchvision", "DEF")
lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
import sam2, timm, torchvision
assert "edgetam_oracle" in sam2.__file__, sam2.__file__
timm.create_model("repvit_m1.dist_in1k", pretrained=False, features_only=True, out_indices=(0, 1, 2, 3))
print(f"[setup] EdgeTAM oracle ok: torch {torch.__version__}, torchvision {torchvision.__version__}, timm {timm.__version__}")
EOF
echo "$pins" > "$stamp"
