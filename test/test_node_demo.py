"""`make demo` in small: the demo starts the node process, prompts, records PNG overlays and a summary, exits 0; with
--depth also 3-D outputs and centroid errors."""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from ros_util import ROOT, ros_env

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_demo_runs_and_writes_summary_and_overlays(tmp_path):
    out = tmp_path / "demo"
    env = ros_env(SAM2_ROS_CACHE=str(tmp_path / "cache"))  # the demo runs backend auto: its export goes here
    env.pop("SAM2_CHECKPOINT", None)
    done = subprocess.run([sys.executable, "-m", "sam2_ros.demo", "--out", str(out), "--seconds", "3", "--fps", "10",
                           "--width", "320", "--height", "240", "--image-size", "128", "--checkpoint", ""],
                          cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=120)
    print(done.stdout[-2000:])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "RANDOM WEIGHTS" in done.stdout, "says loudly that weights are random"
    line = (out / "summary.txt").read_text().strip()
    m = re.match(r"frames_in=(\d+) frames_out=(\d+) fps=([\d.]+) latency_ms=(\d+) J=([\d.]+) ", line)
    assert m, line
    assert int(m[1]) > int(m[2]) > 0 and 0.0 <= float(m[5]) <= 1.0
    backend = "onnxruntime" if not torch.cuda.is_available() else r"\w+"  # auto: ONNX Runtime on a CPU
    assert re.search(rf" backend={backend} start_s=[\d.]+ ", line), line
    pngs = sorted(out.glob("overlay_*.png"))
    assert pngs, "overlay frames written"
    from PIL import Image

    img = np.asarray(Image.open(pngs[-1]))
    assert img.shape == (240, 320, 3) and img.dtype == np.uint8 and img.std() > 5


def test_demo_with_depth_reports_centroid_errors(tmp_path):
    """`python -m sam2_ros.demo --depth`: RGB-D camera, the node with use_depth and the shipped micro model (torch:
    no export); the summary reports each prompted object's 3-D centroid error against ground truth."""
    out = tmp_path / "demo_depth"
    done = subprocess.run([sys.executable, "-m", "sam2_ros.demo", "--depth", "--out", str(out), "--seconds", "3",
                           "--fps", "10", "--width", "320", "--height", "240", "--backend", "torch",
                           "--checkpoint", str(ROOT / "models" / "sam2_micro.pt")],
                          cwd=str(ROOT), env=ros_env(), capture_output=True, text=True, timeout=120)
    print(done.stdout[-2000:])
    assert done.returncode == 0, done.stdout + done.stderr
    line = (out / "summary.txt").read_text().strip()
    m = re.search(r"centroid_err_mm obj1 ([\d.]+) \(x [\d.]+ y [\d.]+ z [\d.]+; (\d+) frames\) "
                  r"obj2 ([\d.]+) \(x [\d.]+ y [\d.]+ z [\d.]+; (\d+) frames\)", line)
    assert m, line
    assert int(m[2]) > 0 and int(m[4]) > 0, "3-D outputs arrived for both objects"
    # the micro model tracks these shapes well (J ~0.8): errors of a few cm at most, not metres (a wrong K, scale
    # or pairing would show as tens of cm)
    assert float(m[1]) < 50.0 and float(m[3]) < 50.0, line


def test_demo_detector_mode_makes_the_objects_from_boxes(tmp_path):
    """`python -m sam2_ros.demo --detector` with the shipped micro model: every object comes from the synthetic
    detector's boxes, one per shape, labelled with the shape's class; J is scored against those shapes."""
    out = tmp_path / "demo"
    env = ros_env()
    env.pop("SAM2_CHECKPOINT", None)
    done = subprocess.run([sys.executable, "-m", "sam2_ros.demo", "--detector", "--out", str(out), "--seconds", "3",
                           "--fps", "10", "--width", "320", "--height", "240", "--backend", "torch"],
                          cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=120)
    print(done.stdout[-2000:])
    assert done.returncode == 0, done.stdout + done.stderr
    line = (out / "summary.txt").read_text().strip()
    m = re.search(r" objects=(\d+) labels=(\S+) J=([\d.]+) \(.*\) events=(\S+) weights=\S*sam2_micro\.pt ", line)
    assert m, line
    assert (int(m[1]), m[2], m[4]) == (4, "cup,bottle,book,phone", "ADDED:4"), line
    assert float(m[3]) >= 0.5, line  # 0.765 measured (docs/BENCHMARKS.md)
    assert sorted(out.glob("overlay_*.png")), "overlay frames written"
