"""Point the ROS wheels' exported CMake files at this venv's Python and numpy headers.

The rosidl generator wheels were built in a manylinux container; ~12 `*Export.cmake` files under <venv>/share still
name that container's `/opt/python/cp3XX-cp3XX/...` include directories, which breaks building our own interfaces.
"""
from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

import numpy


def main(venv: str) -> int:
    share = Path(venv) / "share"
    py_include = sysconfig.get_paths()["include"]
    np_include = numpy.get_include()
    numpy_pat = re.compile(r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/(_core/)?include")
    python_pat = re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+")
    fixed = 0
    for path in share.glob("*/cmake/*Export*.cmake"):
        text = path.read_text()
        new = python_pat.sub(py_include, numpy_pat.sub(np_include, text))
        if new != text:
            path.write_text(new)
            fixed += 1
    print(f"[setup] rewrote include paths in {fixed} exported CMake files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else sys.prefix))
