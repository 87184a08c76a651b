"""l1lite's stage packages import only the stages before them (the layer table), and no import forms a cycle.

Imports are read with ``ast`` (nothing imported), function-local ones included.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "l1lite"

# stage package -> the stage packages it may import, in pipeline order; "top" (``l1lite``, ``cli``, ``demo``) may
# import any. Each entry is in use: an import the table does not allow fails, and so does an entry no import needs.
LAYERS = {
    "core": set(),
    "inference": {"core"},
    "train": {"core"},
    "export": {"core", "train"},  # the adapter merge loads the base as training does
    "eval": {"core", "inference"},
    "serve": {"core", "inference"},
    "bench": {"core", "train", "eval"},
}
TOP = "top"


def _modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module and package under the package folder ``root``."""
    found = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imported(node: ast.Import | ast.ImportFrom, package: str, modules: dict[str, Path]) -> list[str]:
    """The dotted names one import statement loads: ``from x import y`` names ``x.y`` when that is a module."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: anchored at the importing module's package
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the modules of package ``root`` it imports anywhere in its body.

    Importing ``a.b.c`` runs the ``a.b`` package first, so it is an edge to ``a.b`` as well, except from
    inside ``a.b`` (a submodule importing a sibling does not re-run its own package).
    """
    modules = _modules(root)
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _imported(node, package, modules):
                parts = target.split(".")
                for i in range(1, len(parts) + 1):
                    step = ".".join(parts[:i])
                    inside = f"{name}.".startswith(f"{step}.")
                    if step in modules and step != name and (step == target or not inside):
                        edges.add(step)
        graph[name] = edges
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first walk meets (each as ``[a, b, ..., a]``)."""
    state: dict[str, str] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_the_graph_sees_local_relative_and_submodule_imports(tmp_path):
    files = {
        "__init__.py": "",
        "a.py": "import os\nfrom pkg import b\n\ndef f():\n    from pkg.sub.x import y\n",
        "b.py": "from .sub import helper\n",
        "sub/__init__.py": "from pkg.sub.x import y\n",
        "sub/x.py": "from . import helper\nfrom ..b import name\ny = 1\n",
        "sub/helper.py": "import pkg.a\n",
    }
    for name, text in files.items():
        (tmp_path / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / name).write_text(text)
    assert import_graph(tmp_path / "pkg") == {
        "pkg": set(),
        "pkg.a": {"pkg.b", "pkg.sub", "pkg.sub.x"},  # function-local; importing pkg.sub.x runs pkg.sub first
        "pkg.b": {"pkg.sub.helper", "pkg.sub"},  # relative; `from .sub import helper` names a submodule
        "pkg.sub": {"pkg.sub.x"},
        "pkg.sub.x": {"pkg.sub.helper", "pkg.b"},  # a sibling import does not re-run its own package
        "pkg.sub.helper": {"pkg.a"},
    }
    assert ["pkg.b", "pkg.sub", "pkg.sub.x", "pkg.b"] in find_cycles(import_graph(tmp_path / "pkg"))


def test_the_graph_reads_all_of_l1lite():
    graph = import_graph()
    assert len(graph) == len(_modules(PACKAGE)) and "l1lite.bench.dial" in graph
    assert {"l1lite.train.loaders", "l1lite.core.config", "l1lite.train.schedule"} <= graph["l1lite.train.run"]


def stage(module: str) -> str:
    """The stage package of an l1lite module (``l1lite.train.run`` -> ``train``), or ``top``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else TOP


def stage_edges(graph: dict[str, set[str]]) -> dict[tuple[str, str], list[str]]:
    """(importing stage, imported stage) -> the module imports behind it, for imports that cross stages."""
    edges: dict[tuple[str, str], list[str]] = {}
    for module, targets in graph.items():
        for target in targets:
            if stage(module) != stage(target):
                edges.setdefault((stage(module), stage(target)), []).append(f"{module} -> {target}")
    return edges


def layer_problems(graph: dict[str, set[str]], layers: dict[str, set[str]]) -> list[str]:
    """Imports ``layers`` forbids, and entries of ``layers`` no import uses."""
    edges = stage_edges(graph)
    wrong = [
        f"{a} may not import {b}: {', '.join(sorted(why))}"
        for (a, b), why in sorted(edges.items())
        if a != TOP and b not in layers.get(a, set())
    ]
    unused = [
        f"{a} -> {b} is in the table but nothing imports it"
        for a, deps in layers.items()
        for b in deps
        if (a, b) not in edges
    ]
    return wrong + unused


def test_every_stage_package_is_in_the_layer_table():
    stages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} - {"assets", "configs"}
    assert stages == set(LAYERS)


def test_stages_import_only_what_the_layer_table_allows():
    problems = layer_problems(import_graph(), LAYERS)
    assert not problems, "\n".join(problems)


def test_the_layer_check_catches_a_forbidden_import_and_an_unused_rule():
    graph = {k: set(v) for k, v in import_graph().items()}
    graph["l1lite.train.run"].add("l1lite.inference.hf")  # training reaching into inference
    assert layer_problems(graph, LAYERS) == ["train may not import inference: l1lite.train.run -> l1lite.inference.hf"]
    assert layer_problems(import_graph(), {**LAYERS, "serve": {"core", "inference", "eval"}}) == [
        "serve -> eval is in the table but nothing imports it"
    ]


def test_cycle_finder_reports_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_l1lite_imports_have_no_cycle():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
