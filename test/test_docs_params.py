"""docs/node.md's parameter table is the one generated from sam2_ros/ros/params.py, and what it shows is the node's
declarations (name, type, default, dynamic), so the reference cannot drift from the code."""
from __future__ import annotations

from pathlib import Path

import yaml

from sam2_ros.ros import param_docs
from sam2_ros.ros.params import PARAMS

NODE_MD = Path(__file__).resolve().parents[1] / "docs" / "node.md"


def _rows(text: str) -> dict[str, list[str]]:
    """name -> cells of each parameter row between the markers."""
    block = text.split(param_docs.BEGIN, 1)[1].split(param_docs.END, 1)[0]
    rows = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").replace("\\|", "\x00").split("|")]
        if len(cells) == 6 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = [c.replace("\x00", "|") for c in cells]
    return rows


def test_node_md_table_is_the_generated_one():
    text = NODE_MD.read_text()
    assert param_docs.replace_table(text) == text, (
        f"docs/node.md's parameter table is not the one generated from sam2_ros/ros/params.py; regenerate it with "
        f"`.venv/bin/python -m {param_docs.__name__} --write` and commit docs/node.md")


def test_table_shows_every_parameter_as_declared():
    """Each declared parameter once, in declaration order, with its type, its default (read back as YAML: the same
    value and type as config/sam2.yaml holds) and whether it is dynamic."""
    rows = _rows(NODE_MD.read_text())
    assert list(rows) == [p.name for p in PARAMS]
    kinds = {bool: "bool", int: "int", float: "double", str: "string", list: "string[]"}
    for p in PARAMS:
        name, kind, default, _range, dynamic, meaning = rows[p.name]
        shown = yaml.safe_load(default.strip("`"))
        assert shown == p.default and type(shown) is type(p.default), f"{p.name}: table says {default}"
        assert kind == kinds[type(p.default)], p.name
        assert dynamic == ("yes" if p.dynamic else "no"), p.name
        assert meaning.replace("`", "") == p.description, p.name
    assert "0.01 .. 1" in rows["detection_match_iou"][3] and "128 .. 1024, step 32" in rows["image_size"][3]
    assert rows["backend"][3] == "auto | torch | onnxruntime | tensorrt"


def test_check_and_write_modes(tmp_path, capsys):
    """--check fails on a stale table and says how to regenerate; --write repairs it and leaves the rest alone."""
    good = NODE_MD.read_text()
    stale = tmp_path / "node.md"
    stale.write_text(good.replace("| `lost_after` | int | `15` |", "| `lost_after` | int | `12` |"))
    assert stale.read_text() != good
    assert param_docs.main(["--check", "--file", str(stale)]) == 1
    assert "--write" in capsys.readouterr().err
    assert param_docs.main(["--write", "--file", str(stale)]) == 0
    assert stale.read_text() == good
    assert param_docs.main(["--check", "--file", str(stale)]) == 0
