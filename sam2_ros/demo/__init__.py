"""`make demo` / `python -m sam2_ros.demo [--detector | --depth]`: the sam2 node on a synthetic camera, recorded.

No camera, no download: the node runs as its own process (as in deployment, `sam2_ros.ros.node_process`); this process
plays the camera of the simulated world (`sam2_ros.sim`), prompts the node as an operator or a detector would, records
the overlay frames as PNGs, scores the masks against the ground truth (J = IoU) and writes a one-line summary.

Modes, one module each: clicks.py (default: a click on one shape, a box on another), detector.py (a synthetic
detector's vision_msgs boxes make every object), depth.py (an RGB-D camera; the summary adds 3-D centroid errors).
camera.py is what they share; __main__.py reads the arguments and runs the node process.
"""
