"""The benchmarks, run from the checkout root as modules: `.venv/bin/python -m bench.<name> [--quick]` (the checkout's
`sam2_ros` imports first, as under `python -m pytest`); each writes bench/out/<name>.json and .md (bench/common.py).
bench/gpu_check.py is the exception: a plain script for any python with torch (`make gpu-check`)."""
