"""Layers only point down: common -> text -> data -> pretrain -> tasks -> apps, and no package imports in a cycle."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

REPO = Path(__file__).resolve().parents[1]
LIBRARY_LAYERS = ("ernie1.common", "ernie1.text", "ernie1.data", "ernie1.pretrain", "ernie1.tasks")
# Everything users run sits above the library; these may import the library and each other, but not in a cycle.
APP_PACKAGES = ("data_tools", "finetune", "deploy", "converter", "tools", "benchmarks")
APP_MODULES = ("args", "run_pretrain", "run_pretrain_static", "run_pretrain_trainer", "setup")
APPS_LEVEL = len(LIBRARY_LAYERS)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def level_of(module: str) -> Optional[int]:
    """The layer of a project module (0 = common ... APPS_LEVEL = apps), None for third-party modules."""
    for level, layer in enumerate(LIBRARY_LAYERS):
        if module == layer or module.startswith(layer + "."):
            return level
    if module == "ernie1":
        return 0
    top = module.split(".")[0]
    if top in APP_PACKAGES or top in APP_MODULES:
        return APPS_LEVEL
    return None


def imported_modules(source: str, importer: str) -> Iterator[Tuple[int, str]]:
    """(line, module) for every import in `source`, function-level ones included, relative ones resolved."""
    package = importer.rsplit(".", 1)[0] if "." in importer else ""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:
                # `from ernie1.data import builder` imports the submodule ernie1.data.builder.
                yield node.lineno, f"{base}.{alias.name}"


def project_files() -> List[Path]:
    files = [p for p in (REPO / "ernie1").rglob("*.py")]
    for package in APP_PACKAGES:
        files += (REPO / package).rglob("*.py")
    files += [REPO / f"{name}.py" for name in APP_MODULES if (REPO / f"{name}.py").is_file()]
    return sorted(files)


def upward_imports(files: List[Path]) -> List[str]:
    problems = []
    for path in files:
        importer = module_name(path)
        own = level_of(importer)
        for line, target in imported_modules(path.read_text(encoding="utf-8"), importer):
            level = level_of(target)
            if own is not None and level is not None and level > own:
                problems.append(f"{path.relative_to(REPO)}:{line} ({LIBRARY_LAYERS[own]}) imports {target}")
    return problems


def package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "ernie1" and len(parts) > 1 else parts[0]


def package_graph(files: List[Path]) -> Dict[str, Set[str]]:
    graph: Dict[str, Set[str]] = {}
    for path in files:
        importer = module_name(path)
        source = package_of(importer)
        for _, target in imported_modules(path.read_text(encoding="utf-8"), importer):
            if level_of(target) is not None and package_of(target) != source:
                graph.setdefault(source, set()).add(package_of(target))
    return graph


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """One cycle of the directed graph as a list of nodes, or None."""
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = 1
        stack.append(node)
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == 1:
                return stack[stack.index(successor) :] + [successor]
            if successor not in state:
                found = visit(successor)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_module_imports_a_layer_above_its_own():
    assert upward_imports(project_files()) == []


def test_no_package_cycle():
    assert find_cycle(package_graph(project_files())) is None


def test_the_checks_catch_an_upward_import_and_a_cycle(tmp_path):
    importer = "ernie1.data.builder"
    found = [target for _, target in imported_modules("def f():\n    from ernie1.pretrain import config\n", importer)]
    assert "ernie1.pretrain.config" in found and level_of("ernie1.pretrain.config") > level_of(importer)
    assert [t for _, t in imported_modules("from . import masking\n", importer)] == ["ernie1.data", "ernie1.data.masking"]
    assert find_cycle({"finetune": {"deploy"}, "deploy": {"finetune"}}) == ["deploy", "finetune", "deploy"]
    assert find_cycle({"finetune": {"ernie1.tasks"}, "deploy": {"ernie1.tasks"}}) is None
