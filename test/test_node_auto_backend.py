"""`backend: auto` (the default) in a node process over Fast DDS: the first start exports the model to ONNX and says
how long it took, the second start reuses the cached export, and /diagnostics names what really runs (ONNX Runtime
on a CPU). The other node tests pin `backend: torch` so that they do not each pay an export."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from fixtures.node_harness import NodeClient, start_node
from ros_util import ros_env, wait_for
from sam2_ros.ros.client import spinning_node
from sam2_ros.sim import SyntheticScene

pytestmark = [pytest.mark.ros, pytest.mark.slow]
MICRO = str(Path(__file__).resolve().parents[1] / "models" / "sam2_micro.pt")
BASE = 1_700_000_000 * 1_000_000_000


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: auto runs torch or TensorRT there")
def test_auto_backend_exports_once_then_reuses_the_cache(tmp_path):
    env = ros_env(SAM2_ROS_CACHE=str(tmp_path / "cache"))
    scene = SyntheticScene(120, 160, num_objects=2, seed=0)
    logs = []
    with spinning_node("auto_client") as node:
        client = NodeClient(node, name="sam2_auto")
        for run in range(2):
            proc = start_node(tmp_path, name="sam2_auto", env=env, timeout=180, backend="auto",
                              model_config="sam2_micro", checkpoint=MICRO, image_size=128)
            try:
                client.wait_connected()
                client.clear()
                out = client.publish_until_output(scene.frame(run).rgb, BASE + run)
                assert out.objects == []  # no prompt yet: an empty answer for that very frame
                assert wait_for(lambda: client.diagnostics(), 10)
                d = client.diagnostics()[-1]
                assert (d["backend"], d["device"], d["model"]) == ("onnxruntime", "cpu", "sam2_micro@128"), d
            finally:
                code = proc.stop()
            logs.append(proc.log_path.read_text(errors="replace"))
            assert code == 0, logs[-1]
    first, second = logs
    exported = re.search(r"exported sam2_micro@128 to ONNX in ([\d.]+) s", first)
    ready = [re.search(r"via onnxruntime \(ready in ([\d.]+) s\)", log) for log in logs]
    print(f"first start: export {exported and exported[1]} s, ready in {ready[0] and ready[0][1]} s; "
          f"second start: ready in {ready[1] and ready[1][1]} s")
    assert "exporting sam2_micro@128 to ONNX" in first and exported and all(ready), first
    assert "backend auto: onnxruntime on cpu" in second and "using cached ONNX export" in second, second
    assert "exporting" not in second
