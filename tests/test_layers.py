"""The house rule, checked on every import statement (module level and inside functions alike):
a module imports only its own layer or a lower one, no two modules import each other in a circle,
core never imports Streamlit or the dashboard, and nothing in core imports the CLI. Imports made
only for type checkers (under `if TYPE_CHECKING:`) count for the layers but not for circles: they
never run, so they cannot make two modules wait for each other."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT

# Lowest first. A package may import its own layer and every layer before it, never one after it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("core.foundation",)),
    ("contract", ("core.contract",)),
    ("techniques", ("core.pruning", "core.quantization", "core.distillation")),
    ("engines", ("core.pipeline", "core.sweep", "core.jobs")),
    ("views", ("core.compare", "core.diff", "core.deploy", "core.charts", "core.report", "core.program")),
    ("cli", ("core.cli",)),
    ("ui", ("ui",)),
    ("pages", ("pages", "app")),
]
FIRST_PARTY = ("core", "ui", "pages", "app", "bench", "tests")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    files = [REPO_ROOT / "app.py"]
    for folder in ("core", "ui", "pages"):
        files.extend(sorted((REPO_ROOT / folder).rglob("*.py")))
    return {module_name(path): path for path in files}


def type_checking_imports(tree: ast.AST) -> set[int]:
    """The ids of the import statements inside `if TYPE_CHECKING:` blocks."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            found.update(id(inner) for statement in node.body for inner in ast.walk(statement) if isinstance(inner, (ast.Import, ast.ImportFrom)))
    return found


def imported_modules(name: str, path: Path, known: set[str], with_type_only: bool = True) -> set[str]:
    """Every first-party module `name` imports, anywhere in its body; `from package import module`
    counts the module, and a relative import is resolved against the package."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    skipped = set() if with_type_only else type_checking_imports(tree)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            if target.split(".")[0] not in FIRST_PARTY:
                continue
            # The nearest known module: `core.pruning.config.PruneConfig` is an import of core.pruning.config.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(with_type_only: bool = True) -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imported_modules(name, path, known, with_type_only) for name, path in modules.items()}


def layer_of(module: str) -> int | None:
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return index
    return None


def test_every_module_of_core_belongs_to_a_layer():
    unplaced = [name for name in import_graph() if name.startswith("core.") and name not in ("core.__main__",) and layer_of(name) is None]
    assert unplaced == [], f"core modules outside every layer (add them to a layer's package): {unplaced}"


def test_no_module_imports_a_higher_layer():
    upward = []
    for module, targets in import_graph().items():
        for target in targets:
            here, there = layer_of(module), layer_of(target)
            if here is not None and there is not None and there > here:
                upward.append(f"{module} ({LAYERS[here][0]}) imports {target} ({LAYERS[there][0]})")
    assert upward == [], "imports that run up the layers:\n" + "\n".join(sorted(upward))


def test_no_import_circles():
    graph = import_graph(with_type_only=False)
    circles = strongly_connected(graph)
    assert circles == [], "modules that import each other in a circle: " + "; ".join(" <-> ".join(sorted(circle)) for circle in circles)


def test_core_never_imports_streamlit():
    offenders = []
    for name, path in project_modules().items():
        if not name.startswith("core"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n == "streamlit" or n.startswith("streamlit.") for n in names):
                offenders.append(name)
    assert offenders == []


def test_the_graph_sees_imports_inside_functions_and_from_packages(tmp_path):
    """The checks above are only as good as the graph: an import inside a function, a
    `from package import module` and a circle are all found."""
    (tmp_path / "core" / "foundation").mkdir(parents=True)
    source = tmp_path / "core" / "foundation" / "a.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from core.contract import result\ndef f():\n    from core.pruning import masks\n    import core.contract.record\n")
    known = {"core.foundation.a", "core.pruning", "core.pruning.masks", "core.contract.record", "core.contract.result"}
    assert imported_modules("core.foundation.a", source, known) == {"core.pruning", "core.pruning.masks", "core.contract.record", "core.contract.result"}
    assert imported_modules("core.foundation.a", source, known, with_type_only=False) == {"core.pruning", "core.pruning.masks", "core.contract.record"}
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative: every group of two or more modules that reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, neighbours = work[-1]
            advanced = False
            for neighbour in neighbours:
                if neighbour not in index:
                    index[neighbour] = low[neighbour] = counter
                    counter += 1
                    stack.append(neighbour)
                    on_stack.add(neighbour)
                    work.append((neighbour, iter(sorted(graph.get(neighbour, ())))))
                    advanced = True
                    break
                if neighbour in on_stack:
                    low[node] = min(low[node], index[neighbour])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)
    return groups
