"""Test-only InferenceBackend over Meta's SAM2Base methods (the reference package), to check the tracker alone.

With it, StreamingTracker runs Meta's own image encoder, SAM heads, memory attention and memory encoder, so a
mismatch against Meta's video predictor can only come from the tracker's bookkeeping. Never used by the product.
"""
from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import torch

from sam2_ros.model.config import Sam2Config


class OracleBackend:
    """The four parts and glue of InferenceBackend, each a call into Meta's SAM2Base (layout conversions only)."""

    name = "oracle"

    def __init__(self, meta_model: torch.nn.Module, config: Sam2Config) -> None:
        self.meta = meta_model.eval()
        self.config = config
        self.device = torch.device("cpu")

    def encode_image(self, image: torch.Tensor):
        out = self.meta.forward_image(image)
        fpn, pos = out["backbone_fpn"], out["vision_pos_enc"]
        return fpn[0], fpn[1], fpn[2], pos[2]

    def _heads(self, image_embed, feat_s0, feat_s1, point_inputs, mask_inputs, multimask):
        low_multi, _, ious, low, high, ptr, score = self.meta._forward_sam_heads(
            backbone_features=image_embed, point_inputs=point_inputs, mask_inputs=mask_inputs,
            high_res_features=[feat_s0, feat_s1], multimask_output=multimask)
        iou = ious.gather(1, ious.argmax(dim=1, keepdim=True)) if multimask else ious
        return SimpleNamespace(low_res_masks=low, high_res_masks=high, iou=iou, obj_ptr=ptr,
                               object_score_logits=score, low_res_multimasks=low_multi, ious=ious)

    def decode(self, image_embed, feat_s0, feat_s1, point_coords, point_labels, mask_input=None, multimask=False):
        points = None if point_coords is None else {"point_coords": point_coords, "point_labels": point_labels}
        return self._heads(image_embed, feat_s0, feat_s1, points, mask_input, multimask)

    def attend_memory(self, curr, curr_pos, memory, memory_pos, obj_ptrs, obj_ptr_pos):
        b, c, h, w = curr.shape
        seq = lambda x: x.flatten(2).permute(2, 0, 1)  # noqa: E731  [B, C, h, w] -> [hw, B, C]
        mem = torch.cat([memory, obj_ptrs], dim=1).transpose(0, 1)  # [Ms + P, B, D]
        mem_pos = torch.cat([memory_pos, obj_ptr_pos], dim=1).transpose(0, 1)
        out = self.meta.memory_attention(curr=[seq(curr)], curr_pos=[seq(curr_pos)], memory=mem,
                                         memory_pos=mem_pos, num_obj_ptr_tokens=obj_ptrs.shape[1])
        return out.permute(1, 2, 0).reshape(b, c, h, w)

    def encode_memory(self, pix_feat, high_res_masks, object_score_logits, binarize=False):
        b, c, h, w = pix_feat.shape
        feats, pos = self.meta._encode_new_memory(
            current_vision_feats=[pix_feat.flatten(2).permute(2, 0, 1)], feat_sizes=[(h, w)],
            pred_masks_high_res=high_res_masks, object_score_logits=object_score_logits, is_mask_from_pts=binarize)
        return feats, pos[-1]

    def mask_as_output(self, image_embed, feat_s0, feat_s1, mask):
        low, high, ious, _, _, ptr, score = self.meta._use_mask_as_output(image_embed, [feat_s0, feat_s1], mask)
        return SimpleNamespace(low_res_masks=low, high_res_masks=high, iou=ious, obj_ptr=ptr,
                               object_score_logits=score, low_res_multimasks=low, ious=ious)

    def add_no_memory(self, curr):
        return curr + self.meta.no_mem_embed.reshape(1, -1, 1, 1)

    def memory_pos(self, maskmem_pos, t_pos):
        n = self.meta.num_maskmem
        return maskmem_pos.flatten(2).transpose(1, 2) + self.meta.maskmem_tpos_enc[n - t_pos - 1].reshape(1, 1, -1)

    def pointer_pos(self, rel_t: Sequence[float] | torch.Tensor, max_rel: float):
        from sam2.modeling.sam2_utils import get_1d_sine_pe

        rel = torch.tensor(rel_t) if not isinstance(rel_t, torch.Tensor) else rel_t
        if not self.meta.add_tpos_enc_to_obj_ptrs:
            return torch.zeros(rel.shape[0], self.meta.mem_dim)
        width = self.meta.hidden_dim if self.meta.proj_tpos_enc_in_obj_ptrs else self.meta.mem_dim
        return self.meta.obj_ptr_tpos_proj(get_1d_sine_pe(rel / max_rel, dim=width))

    def pointer_tokens(self, obj_ptrs, ptr_pos):
        b, p, c = obj_ptrs.shape
        d = self.meta.mem_dim
        split = c // d
        # Meta: [P, B, C] -> [P, B, split, D] -> [P*split, B, D]; pointer i's chunk j is token i*split + j
        tokens = obj_ptrs.transpose(0, 1).reshape(p, b, split, d).permute(0, 2, 1, 3).flatten(0, 1).transpose(0, 1)
        pos = ptr_pos.repeat_interleave(split, dim=0).unsqueeze(0).expand(b, -1, -1)
        return tokens, pos


# ---------------------------------------------------------------------- streaming scenarios (shared by tracker tests)
def sharpen_(model: torch.nn.Module) -> torch.nn.Module:
    """Make random weights give masks worth comparing: bias the presence head towards "present" (else most masks
    are the constant -1024) and scale the mask hypernetworks so logits span about +-10 instead of +-0.5."""
    decoder = model.sam_mask_decoder
    with torch.no_grad():
        decoder.pred_obj_score_head.layers[2].bias += 4.0
        for mlp in decoder.output_hypernetworks_mlps:
            mlp.layers[2].weight *= 20.0
    return model


class CachedEncoder:
    """Wraps a backend and memoises encode_image by the input's bytes (only to avoid re-encoding the same test
    frames across runs; every other call goes straight through)."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self._cache: dict = {}

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def encode_image(self, image: torch.Tensor):
        key = (tuple(image.shape), image.numpy().tobytes())
        if key not in self._cache:
            self._cache[key] = self._backend.encode_image(image)
        return self._cache[key]


def make_video(folder, num_frames: int, size: int = 256, seed: int = 0) -> list:
    """Moving shapes on a textured background, written as JPEG (quality 100, Meta's predictor reads a folder);
    returns the decoded frames (HxWx3 uint8) so both sides see identical pixels."""
    import os

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    background = np.stack([xx / size * 120 + 40, yy / size * 100 + 60, (xx + yy) / (2 * size) * 80 + 50], -1)
    background += rng.normal(0, 6, background.shape)
    frames = []
    for t in range(num_frames):
        img = background.copy()
        cx, cy = 50 + 4 * t, 70 + 1.5 * t  # red disk moving right
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < 22 ** 2] = (220, 40, 40)
        x0, y0 = 150 - 1.0 * t, 40 + 3 * t  # blue square moving down
        img[(xx > x0) & (xx < x0 + 60) & (yy > y0) & (yy < y0 + 50)] = (40, 60, 210)
        ex, ey = 120 + 2 * np.sin(t / 3) * 10, 190  # green ellipse wobbling
        img[((xx - ex) / 40) ** 2 + ((yy - ey) / 20) ** 2 < 1] = (50, 200, 70)
        path = os.path.join(folder, f"{t:05d}.jpg")
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=100)
        frames.append(np.array(Image.open(path).convert("RGB")))
    return frames


def meta_stream(predictor, folder, num_frames: int, events: dict) -> list:
    """Meta's video predictor run as a live stream: frame f is tracked only after everything up to f-1 happened,
    prompts on frame f come right after it. events: frame -> [(kind, obj_id, payload, replace)].
    Returns records (frame, obj_ids, logits [N, H, W] numpy) for every tracked frame and every prompt."""
    import torch

    import sam2.sam2_video_predictor as meta_video
    import sam2.utils.misc as meta_misc

    meta_video.tqdm = meta_misc.tqdm = lambda iterable, **_: iterable  # no progress bars in test output
    records = []
    with torch.inference_mode():
        state = predictor.init_state(folder)
        for f in range(num_frames):
            if predictor._get_obj_num(state) > 0:
                for idx, ids, masks in predictor.propagate_in_video(state, start_frame_idx=f,
                                                                    max_frame_num_to_track=0):
                    records.append((idx, list(ids), masks[:, 0].numpy().copy()))
            for kind, obj_id, payload, replace in events.get(f, []):
                if kind == "mask":
                    _, ids, masks = predictor.add_new_mask(state, f, obj_id, payload)
                elif kind == "box":
                    _, ids, masks = predictor.add_new_points_or_box(state, f, obj_id, box=payload,
                                                                    clear_old_points=True)
                else:
                    pts, labels = payload
                    _, ids, masks = predictor.add_new_points_or_box(state, f, obj_id, points=pts, labels=labels,
                                                                    clear_old_points=replace)
                records.append((f, list(ids), masks[:, 0].numpy().copy()))
    return records


def tracker_stream(tracker, frames: list, events: dict) -> list:
    """The same stream through StreamingTracker (stamps = frame indices); records as in meta_stream."""
    records = []
    for f, rgb in enumerate(frames):
        r = tracker.track(rgb, stamp=f)
        if r.object_ids:
            records.append((f, list(r.object_ids), r.mask_logits))
        for kind, obj_id, payload, replace in events.get(f, []):
            if kind == "mask":
                r = tracker.add_prompt(obj_id, mask=payload, stamp=f)
            elif kind == "box":
                r = tracker.add_prompt(obj_id, box=payload, stamp=f, replace=True)
            else:
                r = tracker.add_prompt(obj_id, points=payload[0], labels=payload[1], stamp=f, replace=replace)
            records.append((f, list(r.object_ids), r.mask_logits))
    return records
