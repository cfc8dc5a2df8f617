"""The ROS-workspace path: `colcon build` of this repository in a fresh workspace installs node and interfaces."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
pytestmark = pytest.mark.slow


def _copy_sources(dest: Path) -> None:
    """Copy the tracked/unignored source files (what a clone has), not .venv or build outputs."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def test_colcon_build_installs_node_and_interfaces(tmp_path):
    colcon = VENV / "bin" / "colcon"
    if not colcon.exists():
        pytest.skip("colcon is not installed in this venv (requirements/dev.txt installs colcon-common-extensions)")
    ws = tmp_path / "ws"
    _copy_sources(ws / "src" / "sam2_ros")
    env = dict(os.environ, AMENT_PREFIX_PATH=str(VENV), CMAKE_PREFIX_PATH=str(VENV),
               PATH=f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}", ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    build = subprocess.run([str(colcon), "build", "--event-handlers", "console_cohesion+", "--cmake-args",
                            f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF"],
                           cwd=ws, env=env, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]

    install = ws / "install" / "sam2_ros"
    node = install / "lib" / "sam2_ros" / "sam2_node"
    assert node.is_file() and os.access(node, os.X_OK)
    assert node.read_text().splitlines()[0] == f"#!{sys.executable}"
    site = install / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    for rel in ["sam2_ros/msg/_prompt.py", "sam2_ros/srv/_add_prompt.py", "sam2_ros/ros/main.py",
                "sam2_ros/model/__init__.py"]:
        assert (site / rel).is_file(), rel
    share = install / "share" / "sam2_ros"
    for rel in ["launch/sam2.launch.py", "config/sam2.yaml", "msg/Prompt.msg", "srv/AddPrompt.srv", "package.xml"]:
        assert (share / rel).is_file(), rel

    # The workspace's generated interfaces import from the install tree alone (run outside the repository).
    probe = ("import sam2_ros, sam2_ros.msg as m, sam2_ros.srv as s; "
             "p = m.Prompt(object_id=2); r = s.AddPrompt.Request(prompt=p); "
             "print(sam2_ros.__file__, r.prompt.object_id)")
    run = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env=dict(env, PYTHONPATH=str(site)))
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [str(site / "sam2_ros" / "__init__.py"), "2"]
