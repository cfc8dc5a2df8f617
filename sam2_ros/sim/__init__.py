"""The simulated world (numpy only, no ROS, no torch): a camera of moving shapes with ground truth, its registered
depth camera, a detector of its shapes, the ROS-free detector-driven tracking loop over it, and the scores.

    scene = SyntheticScene(480, 640, num_objects=4, seed=0)   # scene.py: frame(i).rgb / .masks / .box(k)
    depth = SyntheticDepthCamera(scene).render(scene.frame(i), "16UC1")   # depth.py
    found = SyntheticDetector(seed=0).detect(scene.frame(i))  # detector.py (+ HiddenShapeScene: shapes leave)
    run = run_synthetic(tracker, scene, SyntheticDetector(), frames=40)  # run.py, scored with metrics.jaccard
"""
from sam2_ros.sim.depth import DepthFrame, SyntheticDepthCamera, erosion_shift
from sam2_ros.sim.detector import (CLASS_NAMES, FALSE_POSITIVE_CLASS, HiddenShapeScene, SyntheticDetection,
                                   SyntheticDetector, pick_hide_window)
from sam2_ros.sim.metrics import IdentityScore, jaccard
from sam2_ros.sim.run import SyntheticRun, run_synthetic
from sam2_ros.sim.scripted import ScriptedScene, ScriptedShape, crossing, leave_and_return
from sam2_ros.sim.scene import SyntheticFrame, SyntheticScene, inner_point

__all__ = ["CLASS_NAMES", "FALSE_POSITIVE_CLASS", "DepthFrame", "HiddenShapeScene", "IdentityScore", "ScriptedScene", "ScriptedShape", "SyntheticDepthCamera",
           "SyntheticDetection", "SyntheticDetector", "SyntheticFrame", "SyntheticRun", "SyntheticScene",
           "crossing", "erosion_shift", "inner_point", "jaccard", "leave_and_return", "pick_hide_window", "run_synthetic"]
