"""The node with `model_config: edgetam` (a process over Fast DDS): it starts with an EdgeTAM checkpoint, answers a
click through ~/add_prompt with a mask, keeps tracking it, and /diagnostics names the model."""
from __future__ import annotations

import pytest
import torch

from fixtures.node_harness import NodeClient, prompt_msg, start_node
from ros_util import wait_for
from sam2_ros.model import build_sam2
from sam2_ros.ros.client import spinning_node
from sam2_ros.sim import SyntheticScene

pytestmark = [pytest.mark.ros, pytest.mark.slow]
BASE = 1_700_000_000 * 1_000_000_000


def test_node_runs_edgetam(tmp_path):
    from sam2_ros.srv import AddPrompt

    torch.manual_seed(0)
    model = build_sam2("edgetam", image_size=256)
    with torch.no_grad():  # present objects, so the answer has a mask
        model.sam_mask_decoder.pred_obj_score_head.layers[2].bias += 4.0
    checkpoint = tmp_path / "edgetam.pt"
    torch.save({"model": model.state_dict()}, checkpoint)
    scene = SyntheticScene(120, 160, num_objects=2, seed=0)
    with spinning_node("edgetam_client") as node:
        client = NodeClient(node, name="sam2_edgetam")
        proc = start_node(tmp_path, name="sam2_edgetam", timeout=120, backend="torch", model_config="edgetam",
                          checkpoint=str(checkpoint), image_size=256)
        try:
            client.wait_connected()
            client.publish_until_output(scene.frame(0).rgb, BASE)
            answer = client.call(AddPrompt, "add_prompt",
                                 AddPrompt.Request(prompt=prompt_msg(1, points=[(80, 60)], labels=[1])))
            assert answer.success, answer.message
            assert [o.object_id for o in answer.masks.objects] == [1]
            out = client.publish_until_output(scene.frame(1).rgb, BASE + 100_000_000)
            assert [o.object_id for o in out.objects] == [1]
            assert wait_for(lambda: client.diagnostics(), 10)
            assert client.diagnostics()[-1]["model"] == "edgetam@256", client.diagnostics()[-1]
        finally:
            code = proc.stop()
        assert code == 0, proc.output()[-3000:]
