"""Streaming SAM 2 tracking for live frames: bounded memory, multi-object, prompts on recent frames by stamp."""
from sam2_ros.tracking.state import TrackerOptions, TrackResult
from sam2_ros.tracking.tracker import StreamingTracker

__all__ = ["StreamingTracker", "TrackerOptions", "TrackResult"]
