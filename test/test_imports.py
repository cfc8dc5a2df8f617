"""The package has no import cycle, and every module imports alone (as a user's first import would).

Static: the graph of module-level imports between sam2_ros modules (imports inside functions are deliberate
late imports and not edges; a package's __init__ is its own node) has no cycle. Dynamic: in one fresh interpreter,
each module is imported with every sam2_ros module but the generated interfaces forgotten first, so each import
runs its own chain from scratch, in that module's order.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sam2_ros"


def module_names() -> list[str]:
    """Every sam2_ros module of the source tree (packages by their __init__), sorted."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if "__pycache__" in parts:
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def module_level_imports(path: Path, name: str, known: set[str]) -> set[str]:
    """sam2_ros modules imported at module level by the file (statements outside functions and classes)."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names if a.name in known)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    package = package[:len(package) - node.level + 1]
                    base = ".".join(package + ([base] if base else []))
                if base in known:
                    out.add(base)
                for alias in node.names:  # `from package import submodule`
                    if f"{base}.{alias.name}" in known:
                        out.add(f"{base}.{alias.name}")
            for field in ("body", "orelse", "finalbody"):  # if / try / with blocks at module level
                inner = getattr(node, field, None)
                if isinstance(inner, list):
                    visit(inner)
            for handler in getattr(node, "handlers", []):
                visit(handler.body)
    visit(ast.parse(path.read_text()).body)
    out.discard(name)
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


def test_no_import_cycle_inside_the_package():
    names = module_names()
    known = set(names)
    graph = {}
    for name in names:
        parts = name.split(".")
        path = ROOT.joinpath(*parts) / "__init__.py" if (ROOT.joinpath(*parts)).is_dir() else \
            ROOT.joinpath(*parts[:-1], parts[-1] + ".py")
        graph[name] = module_level_imports(path, name, known)
    # A package's __init__ importing its own submodules is how a package exports; a submodule importing its own
    # package back (or any longer loop) is a cycle.
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_module_imports_alone():
    runnable = [n for n in module_names() if not n.endswith(".__main__")]  # importing those runs a program
    script = f"""
import importlib, sys
names = {runnable!r}
failed = []
for name in names:
    for loaded in [m for m in sys.modules if m == "sam2_ros" or m.startswith("sam2_ros.")]:
        if not (loaded.startswith("sam2_ros.msg") or loaded.startswith("sam2_ros.srv")):
            del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as err:
        failed.append(f"{{name}}: {{type(err).__name__}}: {{err}}")
print("\\n".join(failed) or "ok")
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=str(ROOT), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout[-4000:] + done.stderr[-4000:]
