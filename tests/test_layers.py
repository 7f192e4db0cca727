"""The package's modules form layers: no module imports, even lazily inside a function, one
that imports it back (directly or through others). Read from the source with `ast`, so
an import hidden in a function body counts too."""

import ast
from pathlib import Path

import course

ROOT = Path(course.__file__).parent




def _name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the course modules it imports anywhere in its source."""
    modules = {_name(p): p for p in ROOT.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                    + ([base] if base else []))
                found.add(base)
                found |= {f"{base}.{a.name}" for a in node.names}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on, stack, out = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_lazy_and_package_imports():
    g = import_graph()
    assert "course.timing" in g["course.pipeline_timing"]
    assert "course.compute" in g["course.roofline_ops"]
    assert "course.roofline_ops" in g["course.roofline"]  # a package re-export
    assert "course.widgets" in g["course.widgets.parallel"]  # from course.widgets import ...


def test_no_import_cycle():
    """Issue 22: the last cycle (model -> mtp -> train -> model) is broken by building the
    MTP layer in course.mtp_module, apart from the training code."""
    assert cycles(import_graph()) == []


def test_modules_made_acyclic_stay_apart():
    g = import_graph()
    reach = {}

    def reaches(a):
        if a not in reach:
            reach[a], todo = set(), list(g[a])
            while todo:
                m = todo.pop()
                if m not in reach[a]:
                    reach[a].add(m)
                    todo.extend(g[m])
        return reach[a]

    # issue 22: roofline <-> compute and kvcache <-> memory were cycles
    for low, high in [("compute", "roofline"), ("kvcache", "memory"), ("params", "memory"),
                      ("timing", "compute"), ("ring", "parallel"), ("ring", "comms"),
                      ("model", "train"), ("model", "moe_train"), ("mtp_module", "mtp")]:
        assert f"course.{high}" not in reaches(f"course.{low}"), (low, high)
