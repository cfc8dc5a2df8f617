#!/usr/bin/env python3
"""Entry of the GPU check (the package next to this file, bench/gpu_check/): `python3 bench/gpu_check.py --out DIR`.

Kept as a file so the documented command works unchanged; see bench/gpu_check/__main__.py for the options.
"""
import runpy
from pathlib import Path

if __name__ == "__main__":
    runpy.run_path(str(Path(__file__).resolve().parent / "gpu_check" / "__main__.py"), run_name="__main__")
