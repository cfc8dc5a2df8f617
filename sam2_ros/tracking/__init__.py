"""Streaming SAM 2 tracking for live frames: bounded memory, multi-object, prompts on recent frames by stamp."""
from sam2_ros.tracking.everything import EverythingResult, segment_everything
from sam2_ros.tracking.resolution import LowResMasks, low_res_masks
from sam2_ros.tracking.state import Candidates, TrackerOptions, TrackResult
from sam2_ros.tracking.tracker import StreamingTracker

__all__ = ["Candidates", "EverythingResult", "LowResMasks", "StreamingTracker", "TrackerOptions", "TrackResult",
           "low_res_masks", "segment_everything"]
