"""One source of defaults: config/sam2.yaml == the node's declared parameters; ranges and choices are enforced."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from sam2_ros.ros.params import PARAMS, Settings

ROOT = Path(__file__).resolve().parents[1]
YAML = ROOT / "config" / "sam2.yaml"


def _yaml_params() -> dict:
    doc = yaml.safe_load(YAML.read_text())
    assert list(doc) == ["/**"], "one section that applies to the node whatever its name/namespace"
    return doc["/**"]["ros__parameters"]


def test_yaml_equals_parameter_table():
    values = _yaml_params()
    table = {p.name: p.default for p in PARAMS}
    assert sorted(values) == sorted(table), "same names"
    for name, default in table.items():
        assert values[name] == default and type(values[name]) is type(default), name
    settings = Settings()
    assert [f.name for f in dataclasses.fields(Settings)] == list(table)
    assert all(getattr(settings, n) == d for n, d in table.items())


def test_yaml_comments_every_parameter():
    lines = YAML.read_text().splitlines()
    for p in PARAMS:
        i = next(k for k, line in enumerate(lines) if line.strip().startswith(f"{p.name}:"))
        j = i - 1
        while lines[j].strip() and not lines[j].strip().startswith("#"):  # grouped lines share one comment
            j -= 1
        assert lines[j].strip().startswith("#"), f"{p.name} has no comment above it"


@pytest.fixture(scope="module")
def node():
    import rclpy

    from sam2_ros.ros.node import Sam2Node

    context = rclpy.Context()
    rclpy.init(context=context, args=["--ros-args", "--params-file", str(YAML), "-p", "min_iou:=0.25"])
    n = Sam2Node(context=context)
    yield n
    n.destroy_node()
    rclpy.shutdown(context=context)


def test_node_declares_the_yaml_defaults(node):
    values = _yaml_params()
    for p in PARAMS:
        got = node.get_parameter(p.name).value
        expected = 0.25 if p.name == "min_iou" else values[p.name]
        assert got == expected and type(got) is type(expected), (p.name, got, expected)
    assert node.get_name() == "sam2"


def test_ranges_and_choices_are_enforced(node):
    from rclpy.parameter import Parameter

    good = node.set_parameters([Parameter("min_iou", value=0.5)])[0]
    assert good.successful and node.settings.min_iou == 0.5, "min_iou is dynamic"
    for name, value in [("min_iou", 1.5), ("backend", "tensorflow"), ("image_size", 100), ("device", "gpu"),
                        ("max_objects", 0), ("image_reliability", "sometimes"), ("depth_min", 20.0),
                        ("depth_max", 0.05), ("depth_mask_erosion", -1), ("points_voxel", -0.01)]:
        result = node.set_parameters([Parameter(name, value=value)])[0]
        print(name, value, "->", result.reason)
        assert not result.successful, (name, value)
    assert node.get_parameter("backend").value == "auto"
    refused = node.set_parameters([Parameter("depth_min", value=20.0)])[0]
    assert "depth_min (20) must be < depth_max (10)" in refused.reason
    both = node.set_parameters_atomically([Parameter("depth_min", value=20.0), Parameter("depth_max", value=30.0)])
    assert both.successful, "checked together: a consistent pair is accepted"
    voxel = node.set_parameters([Parameter("points_voxel", value=0.01)])[0]
    assert voxel.successful and node.settings.points_voxel == 0.01, "points_voxel is dynamic"
    descriptor = node.describe_parameter("image_size")
    assert descriptor.integer_range[0].step == 32 and "model input size" in descriptor.description


def test_readme_parameter_table_matches_the_node():
    """The README's parameter table (with docs/detections.md's) lists every parameter with the node's default, and
    nothing else."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Parameters", 1)[1].split("\n### ", 1)[0]
    # docs/detections.md's own table holds the object-permanence parameters (issue 24; the README is being split)
    detections = (ROOT / "docs" / "detections.md").read_text()
    section += detections.split("## Parameters", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[2].strip("`")
    table = {p.name: p.default for p in PARAMS}
    assert sorted(rows) == sorted(table)
    for name, default in table.items():
        shown = yaml.safe_load(rows[name])
        assert shown == default and type(shown) is type(default), f"README says {name} = {rows[name]}"


def _node_with(args: list[str]):
    import rclpy

    from sam2_ros.ros.node import Sam2Node

    context = rclpy.Context()
    rclpy.init(context=context, args=["--ros-args", *args])
    try:
        return Sam2Node(context=context), context
    except Exception:
        rclpy.shutdown(context=context)
        raise


@pytest.mark.parametrize("how", ["yaml", "cli"])
def test_detection_classes_is_a_string_array_from_files_and_the_command_line(tmp_path, how):
    """`[]` reaches the node unset from the YAML parser and `-p name:=[]`; a typed empty default would be a byte
    array that refuses ['cup', 'book']: both forms give the string arrays the README shows."""
    import rclpy
    from rclpy.parameter import Parameter

    for given, expected in ([], []), (["cup", "book"], ["cup", "book"]):
        if how == "yaml":
            path = tmp_path / "p.yaml"
            path.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"detection_classes": given}}},
                                           default_flow_style=True))
            args = ["--params-file", str(path)]
        else:
            args = ["-p", f"detection_classes:={given!r}"]
        node, context = _node_with(args)
        try:
            p = node.get_parameter("detection_classes")
            assert (p.type_, p.value) == (Parameter.Type.STRING_ARRAY, expected), (args, p.type_, p.value)
        finally:
            node.destroy_node()
            rclpy.shutdown(context=context)


def test_detection_parameters_change_the_registry_rules_at_once(node):
    """What `ros2 param set` sends: a string array, or an empty *bool* array for "[]"; other types are refused. The
    registry's rules are replaced as a whole and only with values ObjectOptions accepts."""
    from rclpy.parameter import Parameter

    assert node.set_parameters([Parameter("detection_classes", Parameter.Type.STRING_ARRAY, ["cup"])])[0].successful
    assert node.registry.options.detection_classes == ("cup",) and node.settings.detection_classes == ["cup"]
    assert node.set_parameters([Parameter("detection_classes", Parameter.Type.BOOL_ARRAY, [])])[0].successful
    assert node.registry.options.detection_classes == () and node.settings.detection_classes == []
    for bad in (Parameter("detection_classes", Parameter.Type.STRING, "cup"),
                Parameter("detection_classes", Parameter.Type.INTEGER_ARRAY, [1, 2]),
                Parameter("detection_match_iou", Parameter.Type.DOUBLE, 0.0),
                Parameter("lost_after", Parameter.Type.INTEGER, 0)):
        result = node.set_parameters([bad])[0]
        print(bad.name, bad.value, "->", result.reason)
        assert not result.successful
    for name, value in [("detection_min_score", 0.8), ("detection_match_iou", 0.5), ("presence_threshold", 0.25),
                        ("lost_after", 4), ("remove_lost_after", 3.0)]:
        assert node.set_parameters([Parameter(name, value=value)])[0].successful
        assert getattr(node.registry.options, name) == value, name
    assert node.registry.options.max_objects == 16


def test_a_start_value_that_is_not_a_string_list_is_refused_at_start():
    with pytest.raises(ValueError, match="detection_classes must be a list of strings"):
        _node_with(["-p", "detection_classes:=[1, 2]"])
