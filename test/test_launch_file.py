"""launch/sam2.launch.py: compiles, names the real executable, package and config, declares image/camera_info/depth/
params_file/namespace.

ROS 2 `launch` / `launch_ros` are not on PyPI, so the file cannot be run for real here. The last test executes it with
stand-in launch classes that only record their arguments (a mock for what cannot run here).
"""
from __future__ import annotations

import ast
import importlib.util
import re
import sys
import types
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch" / "sam2.launch.py"


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and
            getattr(n.func, "id", getattr(n.func, "attr", None)) == name]


def _kw(call: ast.Call) -> dict[str, object]:
    return {k.arg: (k.value.value if isinstance(k.value, ast.Constant) else k.value) for k in call.keywords}


def test_compiles():
    compile(LAUNCH.read_text(), str(LAUNCH), "exec")


def test_names_the_installed_executable_and_config():
    tree = ast.parse(LAUNCH.read_text())
    nodes = _calls(tree, "LifecycleNode") + _calls(tree, "Node")
    assert len(nodes) == 1
    kw = _kw(nodes[0])
    assert kw["package"] == "sam2_ros" and kw["executable"] == "sam2_node" and kw["name"] == "sam2"
    # the executable is the one CMake installs, and it calls the real entry point
    cmake = (ROOT / "CMakeLists.txt").read_text()
    installed = r'install\(PROGRAMS "\$\{CMAKE_CURRENT_BINARY_DIR\}/sam2_node" DESTINATION lib/\$\{PROJECT_NAME\}\)'
    assert re.search(installed, cmake)
    assert "from sam2_ros.ros.main import main" in (ROOT / "scripts" / "sam2_node.in").read_text()
    assert "install(DIRECTORY launch config DESTINATION share/${PROJECT_NAME})" in cmake
    # the default params file is the package's config/sam2.yaml, and that file is a ROS params file
    joins = [c for c in _calls(tree, "join") if any(isinstance(a, ast.Constant) and a.value == "sam2.yaml"
                                                    for a in c.args)]
    assert joins and [a.value for a in joins[0].args[1:]] == ["config", "sam2.yaml"]
    assert "ros__parameters" in yaml.safe_load((ROOT / "config" / "sam2.yaml").read_text())["/**"]
    (package_call,) = _calls(tree, "get_package_share_directory")
    assert package_call.args[0].value == "sam2_ros"


def test_declares_the_arguments():
    tree = ast.parse(LAUNCH.read_text())
    declared = {c.args[0].value for c in _calls(tree, "DeclareLaunchArgument")}
    assert {"image", "camera_info", "depth", "params_file", "namespace", "checkpoint", "model_config"} <= declared
    used = {c.args[0].value for c in _calls(tree, "LaunchConfiguration")}
    assert declared == used, "every declared argument is used, every used one declared"


def test_runs_with_stand_in_launch_modules(tmp_path, monkeypatch):
    """Execute generate_launch_description and the node factory with recording stand-ins (mock: launch not on PyPI)."""
    class Recorder:
        def __init__(self, *args, **kwargs):
            self.args, self.kwargs = args, kwargs

    class LaunchConfiguration(Recorder):
        values = {"image": "/cam/front/image_raw", "camera_info": "", "depth": "", "namespace": "robot1",
                  "params_file": "p.yaml", "checkpoint": "", "model_config": ""}

        def perform(self, context):
            return self.values[self.args[0]]

    fake = {"launch": types.ModuleType("launch"), "launch.actions": types.ModuleType("launch.actions"),
            "launch.substitutions": types.ModuleType("launch.substitutions"),
            "launch_ros": types.ModuleType("launch_ros"), "launch_ros.actions": types.ModuleType("launch_ros.actions"),
            "ament_index_python": types.ModuleType("ament_index_python"),
            "ament_index_python.packages": types.ModuleType("ament_index_python.packages")}
    fake["launch"].LaunchDescription = Recorder
    fake["launch.actions"].DeclareLaunchArgument = Recorder
    fake["launch.actions"].OpaqueFunction = Recorder
    fake["launch.substitutions"].LaunchConfiguration = LaunchConfiguration
    fake["launch_ros.actions"].LifecycleNode = Recorder
    fake["ament_index_python.packages"].get_package_share_directory = lambda pkg: f"/opt/share/{pkg}"
    for name, module in fake.items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location("sam2_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    actions = description.args[0]
    defaults = {a.args[0]: a.kwargs["default_value"] for a in actions if "default_value" in a.kwargs}
    assert defaults["params_file"] == "/opt/share/sam2_ros/config/sam2.yaml"
    (node,) = actions[-1].kwargs["function"](None)
    remaps = dict(node.kwargs["remappings"])
    print("remappings", remaps)
    assert remaps == {"image": "/cam/front/image_raw", "image/compressed": "/cam/front/image_raw/compressed",
                      "camera_info": "/cam/front/camera_info"}
    assert node.kwargs["executable"] == "sam2_node" and node.kwargs["parameters"][0].args == ("params_file",)
    assert len(node.kwargs["parameters"]) == 1  # no override given: the file alone
    LaunchConfiguration.values.update(checkpoint="/models/sam2.1_hiera_tiny.pt")
    (node,) = actions[-1].kwargs["function"](None)
    assert node.kwargs["parameters"][1] == {"checkpoint": "/models/sam2.1_hiera_tiny.pt"}  # overrides the file
    # depth is remapped when given (a RealSense's aligned depth), camera_info when given explicitly
    LaunchConfiguration.values.update(depth="/cam/aligned_depth_to_color/image_raw", camera_info="/cam/color/info")
    (node,) = actions[-1].kwargs["function"](None)
    remaps = dict(node.kwargs["remappings"])
    assert remaps["depth"] == "/cam/aligned_depth_to_color/image_raw" and remaps["camera_info"] == "/cam/color/info"
