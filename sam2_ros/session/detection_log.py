"""What one applied detection array is worth saying in the log, ROS-free (the session's caller throttles per key)."""
from __future__ import annotations

from sam2_ros.objects import AppliedDetections, ObjectRegistry

MAX_LISTED = 5  # malformed / refused detections written out per array (a log line of bounded length)


class DetectionLog:
    """The log lines of detection arrays: (throttle key, warning?, text). Malformed detections repeat with every array
    of a bad detector (the caller throttles per key); a stamp naming no tracked frame (dropped by a slow model, older
    than the history, or a detector's own clock) is normal under load, so it is information, not a warning; detections
    the tracker refused are rare; `max_objects` reached is said once, and again only after there was room."""

    def __init__(self) -> None:
        self._limit_said = False

    def lines(self, applied: AppliedDetections, registry: ObjectRegistry, found: bool,
              stamp_ns: int) -> list[tuple[str, bool, str]]:
        plan, out = applied.plan, []
        if plan.skipped:
            listed = "; ".join(f"#{i} {reason}" for i, reason in plan.skipped[:MAX_LISTED])
            more = f"; ... ({len(plan.skipped)} in all)" if len(plan.skipped) > MAX_LISTED else ""
            out.append(("detections skipped", True, f"~/detections (stamp {stamp_ns}): skipped {len(plan.skipped)} "
                        f"malformed: {listed}{more}"))
        if not found:
            out.append(("detections late", False, f"~/detections: stamp {stamp_ns} names no tracked frame (dropped, or "
                        "older than prompt_history): applied to the newest frame"))
        for i, error in applied.failed[:MAX_LISTED]:
            out.append((f"detections failed {i}", True, f"~/detections (stamp {stamp_ns}): detection #{i} refused by the "
                        f"tracker: {error}"))
        if len(applied.failed) > MAX_LISTED:
            out.append(("detections failed more", True, f"~/detections (stamp {stamp_ns}): {len(applied.failed)} "
                        f"detections refused by the tracker in all ({MAX_LISTED} listed above)"))
        if plan.corrections:  # drift corrections: information, one line per array (the caller throttles)
            listed = "; ".join(f"object {a.object_id}: {a.why}" for a in plan.corrections[:MAX_LISTED])
            out.append(("detections corrected", False, f"~/detections (stamp {stamp_ns}): re-prompted with its "
                        f"detection box: {listed} ({registry.corrections} corrections so far)"))
        max_objects = registry.options.max_objects
        if plan.limit_reached and not self._limit_said:
            self._limit_said = True
            out.append(("detections limit", True, f"~/detections: max_objects={max_objects} objects tracked; "
                        f"{len(plan.over_limit)} detection(s) make no object (said once until there is room)"))
        elif len(registry) < max_objects:
            self._limit_said = False
        return out
