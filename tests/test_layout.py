"""The package layout of docs/architecture.md: no import cycle, counting imports inside functions."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def import_graph(package="twostep_asteroid"):
    """``module -> set of the package's modules it imports`` (anywhere in its source)."""
    files = {".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): f
             for f in (ROOT / package).rglob("*.py")}
    graph = {}
    for name, path in files.items():
        pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                parts = pkg.split(".")
                base = (".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
                        if node.level else node.module)
                deps.update(c for c in [base] + [f"{base}.{a.name}" for a in node.names] if c in files)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name in files)
        graph[name] = deps - {name}
    return graph


def cycles(graph):
    """The modules that can reach themselves."""
    def reach(start):
        seen, todo = set(), list(graph[start])
        while todo:
            m = todo.pop()
            if m == start:
                return True
            if m not in seen:
                seen.add(m)
                todo.extend(graph[m])
        return False
    return sorted(m for m in graph if reach(m))


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "twostep_asteroid.models" in graph and graph["twostep_asteroid.models"]
    assert cycles(graph) == []


def test_the_cycle_check_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c"]
