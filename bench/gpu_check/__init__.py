"""bench/gpu_check: the time-boxed GPU check (`python3 bench/gpu_check.py --out DIR`, `make gpu-check`).

plan.py: sizes, steps, budgets and thresholds (no torch); common.py: what the steps share; steps_check.py,
steps_timing.py, steps_tensorrt.py: one `step_<name>` per step; __main__.py: the runner (budgets, watchdog, JSON
and markdown after every step).
"""
