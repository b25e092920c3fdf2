"""The import graph of the trainlab package, from the source (ast), and its cycles.

    python scripts/import_graph.py            # prints every cycle and every import that runs up LAYERS;
                                              # exit 1 if there is one
    python scripts/import_graph.py --edges    # also the edges, module -> modules it imports

Every import counts, module-level or inside a function: a cycle through a function-level
import still ties the two modules together. tests/test_front_door.py runs it.
"""
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "trainlab"

# The allowed direction of imports: a module imports only modules of its own layer or of the layers
# below it. The command shell on top, the training core under it, the parts the core assembles, the
# option schemas, the error shape at the bottom. A module belongs to the first prefix it starts with.
LAYERS = [
    ("app", ["trainlab.app", "trainlab.__main__"]),
    ("engine", ["trainlab.engine"]),
    ("parts", ["trainlab.nn", "trainlab.data", "trainlab.optim", "trainlab.diagnose", "trainlab.sweep"]),
    ("schemas", ["trainlab.schemas", "trainlab.config", "trainlab.registry", "trainlab.plugins", "trainlab.devices",
                 "trainlab.provenance"]),
    ("base", ["trainlab.errors", "trainlab.integrity", "trainlab"]),
]
PACKAGE_ROOT = "trainlab"  # the package's own __init__ only: a new top-level module must be given a layer


def layer_of(module: str) -> int:
    for level, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or (p != PACKAGE_ROOT and module.startswith(p + ".")) for p in prefixes):
            return level
    raise KeyError(f"{module} is in no layer of LAYERS")


def upward_imports(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) pairs where the imported module's layer is above the importer's."""
    return sorted((m, t) for m, targets in edges.items() for t in targets if layer_of(t) < layer_of(m))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in (ROOT / PACKAGE).rglob("*.py")}
    edges: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        tree = ast.parse(path.read_text(), str(path))
        for block in [n for n in ast.walk(tree) if isinstance(n, ast.If) and _type_checking(n.test)]:
            block.body = []  # imports for annotations only: they do not run
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for target in targets:
                # the longest known module the import names (`from trainlab.nn import archs` -> trainlab.nn.archs)
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != module and not module.startswith(target + "."):
                    edges[module].add(target)
    return edges


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main(argv: list[str]) -> int:
    edges = graph()
    if "--edges" in argv:
        for module in sorted(edges):
            print(f"{module} -> {', '.join(sorted(edges[module])) or '-'}")
    found = cycles(edges)
    for component in found:
        print("cycle: " + " <-> ".join(component))
    upward = upward_imports(edges)
    for importer, imported in upward:
        print(f"upward: {importer} ({LAYERS[layer_of(importer)][0]}) imports {imported} ({LAYERS[layer_of(imported)][0]})")
    print(f"{len(edges)} modules, {sum(map(len, edges.values()))} imports, {len(found)} cycles, "
          f"{len(upward)} upward imports")
    return 1 if found or upward else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
