"""Meta's EdgeTAM code (PyPI `edgetam-dimos`, no weights) as a test oracle, run in a subprocess.

edgetam-dimos installs a top-level `sam2` that would shadow the SAM 2 oracle (`sam2` 1.1.0) in the test process, so
it lives in build/edgetam_oracle (scripts/setup_edgetam_oracle.sh, --target, from PyPI) and only a child process
run with PYTHONPATH=build/edgetam_oracle imports it. The parent sends inputs and gets outputs as torch files
(tensors, lists, ints only: read with weights_only=True). Project code never imports this.

Child-side facts (not changes to the reference's maths):
- torchvision from PyPI is a CUDA build whose compiled ops do not load against torch 2.13.0+cpu, and its Python
  import then fails registering fake kernels for `torchvision::nms`/`qnms`. The child declares those two op
  schemas (no kernels) before importing it; nothing here calls them (timm imports torchvision for
  FrozenBatchNorm2d and feature-extractor helpers only).
- EdgeTAM's TimmBackbone asks timm for pretrained ImageNet weights (a download): the child builds it with
  pretrained=False; the weights are random, then perturbed (BatchNorm statistics too) and saved as a checkpoint.
- Streams run EdgeTAM's model under two session logics: sam2 1.1.0's SAM2VideoPredictor (what our tracker follows:
  objects tracked independently, objects may be added after tracking started; loaded from its file with the
  perceiver's 3-D memory positions expanded as EdgeTAM's own predictor does) and EdgeTAM's own predictor (the
  SAM 2.0 session logic, where a prompt on one object makes the frame a prompted frame for all objects and new
  objects are refused once tracking started), on a scenario where those rules agree.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
ORACLE_DIR = ROOT / "build" / "edgetam_oracle"
REFERENCE_CONFIG = "configs/edgetam.yaml"


def oracle_missing() -> str | None:
    """Why the EdgeTAM oracle cannot run here (None when it can)."""
    if not (ORACLE_DIR / ".stamp").is_file():
        return (f"EdgeTAM oracle not installed at {ORACLE_DIR} (run scripts/setup_edgetam_oracle.sh; `make setup` "
                "does it)")
    return None


def run_oracle(task: str, payload: dict, folder: Path, timeout: float = 600) -> dict:
    """Run `task` in the oracle's child process with `payload` (torch-saveable) -> its result dict."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    request, answer = folder / f"{task}_in.pt", folder / f"{task}_out.pt"
    torch.save(payload, request)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ORACLE_DIR), str(ROOT)]))
    done = subprocess.run([sys.executable, __file__, task, str(request), str(answer)], env=env, capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"EdgeTAM oracle task {task!r} failed (rc {done.returncode}):\n{done.stderr[-4000:]}")
    return torch.load(answer, map_location="cpu", weights_only=True)


def sam2_1_1_predictor_file() -> str:
    """Path of sam2 1.1.0's sam2_video_predictor.py (the session logic our tracker follows), found in this process."""
    import importlib.util

    spec = importlib.util.find_spec("sam2")
    return str(Path(spec.origin).parent / "sam2_video_predictor.py")


# ---------------------------------------------------------------------------------------------- child process side
def _child_imports():
    """Import EdgeTAM's sam2 and timm in the child (see the module docstring for the torchvision shim)."""
    import warnings

    warnings.filterwarnings("ignore")
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _child_imports.lib = lib  # keep the library object alive
    import sam2
    import sam2.modeling.backbones.timm as timm_backbone

    assert str(ORACLE_DIR) in sam2.__file__, f"child imported the wrong sam2: {sam2.__file__}"
    create = timm_backbone.create_model
    timm_backbone.create_model = lambda *a, **k: create(*a, **{**k, "pretrained": False})  # no download
    return sam2


def _load_v11_predictor(path: str):
    """sam2 1.1.0's SAM2VideoPredictor over EdgeTAM's SAM2Base, with 3-D (perceiver) memory positions expanded."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("sam2_1_1_video_predictor", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)

    class Predictor(module.SAM2VideoPredictor):
        def _get_maskmem_pos_enc(self, inference_state, current_out):
            out = current_out["maskmem_pos_enc"]
            if out is None:
                return None
            cached = inference_state["constants"].setdefault("maskmem_pos_enc", [x[0:1].clone() for x in out])
            return [x.expand(out[0].size(0), *x.shape[1:]) for x in cached]

    module.EdgeTamPredictor = Predictor
    return module


def _build(payload: dict):
    """EdgeTAM's SAM2Base / video predictor with seeded, perturbed, sharpened random weights."""
    from hydra import compose
    from hydra.utils import instantiate

    from oracle import perturb_
    from oracle_backend import sharpen_

    size = payload["image_size"]
    overrides = [
        f"++model.image_size={size}",
        f"++model.memory_attention.layer.cross_attention.q_sizes=[{size // 16},{size // 16}]",
        f"++model.memory_attention.layer.self_attention.feat_sizes=[{size // 16},{size // 16}]",
        # what Meta's build_sam2_video_predictor adds
        "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
        "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
        "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
        "++model.binarize_mask_from_pts_for_mem_enc=true",
        "++model.fill_hole_area=0",  # Meta asks for 8 but fills only with cv2/CUDA (absent here); ours: 0
    ]
    session = payload.get("session", "v1.1")
    if session == "v1.1":
        _load_v11_predictor(payload["predictor_file"])
        overrides.insert(0, "++model._target_=sam2_1_1_video_predictor.EdgeTamPredictor")
    else:
        overrides.insert(0, "++model._target_=sam2.sam2_video_predictor.SAM2VideoPredictor")
    cfg = compose(config_name=REFERENCE_CONFIG, overrides=overrides)
    torch.manual_seed(payload.get("seed", 0))
    model = instantiate(cfg.model, _recursive_=True).eval()
    perturb_(model, payload.get("seed", 0))
    gen = torch.Generator().manual_seed(payload.get("seed", 0) + 1)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_var"):
                buf.copy_(torch.rand(buf.shape, generator=gen) + 0.5)
            elif name.endswith("running_mean"):
                buf.copy_(torch.randn(buf.shape, generator=gen) * 0.1)
    return sharpen_(model)


def _parts(model, x: dict) -> dict:
    """Every part of Meta's EdgeTAM on the given inputs (layouts converted to ours)."""
    out = {}
    with torch.no_grad():
        enc = model.forward_image(x["image"])
        fpn, pos = enc["backbone_fpn"], enc["vision_pos_enc"]
        out["encode_image"] = [fpn[0], fpn[1], fpn[2], pos[2]]
        out["trunk"] = list(model.image_encoder.trunk(x["image"]))
        b = x["point_coords"].shape[0]
        embed = fpn[2].expand(b, -1, -1, -1)
        s0, s1 = fpn[0].expand(b, -1, -1, -1), fpn[1].expand(b, -1, -1, -1)
        points = {"point_coords": x["point_coords"], "point_labels": x["point_labels"]}
        for multimask in (False, True):
            low_multi, _, ious, low, high, ptr, score = model._forward_sam_heads(
                backbone_features=embed, point_inputs=points, mask_inputs=None, high_res_features=[s0, s1],
                multimask_output=multimask)
            out[f"decode_{multimask}"] = [low_multi, ious, low, high, ptr, score]
        seq = lambda t: t.flatten(2).permute(2, 0, 1)  # noqa: E731  [B, C, h, w] -> [hw, B, C]
        memory = torch.cat([x["memory"], x["obj_ptrs"]], dim=1).transpose(0, 1)
        memory_pos = torch.cat([x["memory_pos"], x["obj_ptr_pos"]], dim=1).transpose(0, 1)
        h = x["curr"].shape[-1]
        attended = model.memory_attention(curr=[seq(x["curr"])], curr_pos=[seq(x["curr_pos"])], memory=memory,
                                          memory_pos=memory_pos, num_obj_ptr_tokens=x["obj_ptrs"].shape[1],
                                          num_spatial_mem=x["frames"])
        out["attend_memory"] = attended.permute(1, 2, 0).reshape(x["curr"].shape[0], -1, h, h)
        for binarize in (False, True):
            rows = []  # one object per call: Meta's perceiver fails on a batch > 1 (`view` of an expanded tensor)
            for i in range(x["pix_feat"].shape[0]):
                feats, mem_pos = model._encode_new_memory(
                    current_vision_feats=[seq(x["pix_feat"][i:i + 1])], feat_sizes=[(h, h)],
                    pred_masks_high_res=x["high_res_masks"][i:i + 1],
                    object_score_logits=x["object_score_logits"][i:i + 1], is_mask_from_pts=binarize)
                rows.append((feats, mem_pos[-1]))
            out[f"encode_memory_{binarize}"] = [torch.cat([r[0] for r in rows]), torch.cat([r[1] for r in rows])]
    return out


def _stream(model, payload: dict) -> list:
    from oracle_backend import meta_stream

    for name in ("sam2_1_1_video_predictor", "sam2.sam2_video_predictor"):
        if name in sys.modules:
            sys.modules[name].tqdm = lambda iterable, **_: iterable
    records = meta_stream(model, payload["folder"], payload["frames"], payload["events"])
    return [(f, ids, torch.from_numpy(logits)) for f, ids, logits in records]


def _child(task: str, request: str, answer: str) -> None:
    _child_imports()
    payload = torch.load(request, map_location="cpu", weights_only=True)
    model = _build(payload)
    result: dict = {}
    if payload.get("checkpoint"):
        torch.save({"model": model.state_dict()}, payload["checkpoint"])
    if task == "parts":
        result = _parts(model, payload["inputs"])
    elif task == "stream":
        result = {"records": _stream(model, payload)}
    elif task != "checkpoint":
        raise SystemExit(f"unknown task {task!r}")
    torch.save(result, answer)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # oracle.py, oracle_backend.py
    _child(*sys.argv[1:4])
