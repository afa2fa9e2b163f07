"""The shape of the code base, checked: no import loops in ``orchestrator/`` or ``runner/`` (every
``import`` statement counts, also those inside functions), no file in ``orchestrator/`` over 800
lines, the host never imports the runner's entry script, and every task type's scoring agrees with
the metric catalogue."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("orchestrator", "runner")
MAX_LINES = 800


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in (REPO / package).rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of ``known`` that ``path`` imports (resolving relative imports; ``from pkg import
    submodule`` counts as importing the submodule)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    """``module -> modules of orchestrator/ and runner/ it imports``."""
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import loop of ``graph`` (``[a, b, ..., a]``), or ``None``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_cycle_finder_finds_a_loop():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_loops():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import loop: " + " -> ".join(cycle)


def test_host_never_imports_the_runner_entry_script():
    graph = import_graph()
    offenders = sorted(m for m, targets in graph.items() if m.startswith("orchestrator") and "runner.run" in targets)
    assert offenders == []


def test_runner_never_imports_the_orchestrator():
    graph = import_graph()
    offenders = sorted(m for m, targets in graph.items()
                       if m.startswith("runner") and any(t.startswith("orchestrator") for t in targets))
    assert offenders == []


@pytest.mark.parametrize("path", sorted((REPO / "orchestrator").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_orchestrator_files_are_small(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_metrics_import_nothing_of_ours():
    for path in (REPO / "metrics").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            assert not any(n.split(".")[0] in ("runner", "orchestrator") for n in names), path


@pytest.mark.parametrize("task_type", ["regression", "classification", "generation", "spectra"])
def test_task_type_module_and_catalogue_agree(task_type):
    """Each built-in task type is one module with TASK_TYPE, and its catalogue entries exist."""
    from metrics import catalogue
    from runner.tasks import get_task_type
    from runner.tasks.base import TaskType

    module = __import__(f"runner.tasks.{task_type}", fromlist=["TASK_TYPE"])
    assert isinstance(module.TASK_TYPE, TaskType) and module.TASK_TYPE.name == task_type
    assert get_task_type(task_type) is module.TASK_TYPE
    assert catalogue.main_metric(task_type) in catalogue.names(task_type)
    assert module.TASK_TYPE.metric_names() == catalogue.names(task_type)


def test_runner_run_has_no_branch_on_the_task_type():
    source = (REPO / "runner" / "run.py").read_text() + (REPO / "runner" / "score.py").read_text()
    for name in ("regression", "classification", "generation", "spectra"):
        assert f'"{name}"' not in source
