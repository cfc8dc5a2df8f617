"""The node's parameter table in docs/node.md, generated from `params.py` so the reference cannot drift from the code.

    python -m sam2_ros.ros.param_docs            # print the markdown table
    python -m sam2_ros.ros.param_docs --write    # replace the table between the markers in docs/node.md
    python -m sam2_ros.ros.param_docs --check    # exit 1 when docs/node.md's table is not the generated one

`test/test_docs_params.py` runs the check. Imports no ROS module.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from sam2_ros.ros.params import PARAMS, Param

BEGIN = "<!-- params:begin -->"
END = "<!-- params:end -->"
NODE_MD = Path(__file__).resolve().parents[2] / "docs" / "node.md"
REGENERATE = "python -m sam2_ros.ros.param_docs --write"

# Values that no range or choice list describes (validate() checks them by hand).
_FREE_TEXT = {"device": "auto \\| cpu \\| cuda \\| cuda:N", "checkpoint": "file path, or empty"}


def type_name(p: Param) -> str:
    """The ROS parameter type a user sets (`ros2 param describe` says the same)."""
    if isinstance(p.default, bool):
        return "bool"
    if isinstance(p.default, int):
        return "int"
    if isinstance(p.default, float):
        return "double"
    return "string[]" if isinstance(p.default, list) else "string"


def default_text(p: Param) -> str:
    """The default as YAML writes it (config/sam2.yaml), so `yaml.safe_load` of the cell gives the value back."""
    d = p.default
    if isinstance(d, bool):
        return "true" if d else "false"
    if isinstance(d, str):
        return f'"{d}"'
    if isinstance(d, list):
        return "[" + ", ".join(f"'{v}'" for v in d) + "]"
    return repr(d)


def range_text(p: Param) -> str:
    """Allowed values: choices, low .. high, or the free-form rule."""
    if p.name in _FREE_TEXT:
        return _FREE_TEXT[p.name]
    if isinstance(p.default, list):
        return "list of strings"
    if p.low is not None and not p.choices and p.step == 1:  # integers: "step 1" says nothing
        return f"{p.low:g} .. {p.high:g}"
    return p.range_text()


def _cell(text: str) -> str:
    """A description as a table cell: topic names as code, no stray column separators."""
    return re.sub(r"(~/\w+)", r"`\1`", text.replace("|", "\\|"))


def markdown_table(params: tuple[Param, ...] = PARAMS) -> str:
    """One row per parameter, in declaration order (the order of config/sam2.yaml)."""
    rows = ["| Parameter | Type | Default | Range | Dynamic | Meaning |", "|---|---|---|---|---|---|"]
    for p in params:
        rows.append(f"| `{p.name}` | {type_name(p)} | `{default_text(p)}` | {range_text(p)} | "
                    f"{'yes' if p.dynamic else 'no'} | {_cell(p.description)} |")
    return "\n".join(rows)


def _block() -> str:
    return f"{BEGIN}\n<!-- generated from sam2_ros/ros/params.py by `{REGENERATE}`; edit there -->\n\n" \
           f"{markdown_table()}\n\n{END}"  # blank lines: the table is a block of its own between the comments


def replace_table(text: str) -> str:
    """`text` with everything from BEGIN to END (inclusive) replaced by the generated block."""
    start, stop = text.find(BEGIN), text.find(END)
    if start < 0 or stop < start:
        raise ValueError(f"{BEGIN} ... {END} not found (in this order)")
    return text[:start] + _block() + text[stop + len(END):]


def main(argv: list[str] | None = None) -> int:
    """Print, write or check the table; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite the table in docs/node.md")
    mode.add_argument("--check", action="store_true", help="exit 1 when docs/node.md's table is stale")
    parser.add_argument("--file", type=Path, default=NODE_MD, help="the markdown file (default: docs/node.md)")
    args = parser.parse_args(argv)
    if not (args.write or args.check):
        print(markdown_table())
        return 0
    text = args.file.read_text()
    new = replace_table(text)
    if args.check:
        if new != text:
            print(f"{args.file}: the parameter table differs from sam2_ros/ros/params.py; run `{REGENERATE}`",
                  file=sys.stderr)
            return 1
        return 0
    if new != text:
        args.file.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
