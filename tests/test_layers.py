"""The package's shape: imports only run down scripts/import_graph.py's LAYERS (the command shell,
the training core, the parts, the schemas, the errors), no import cycle, small modules, and the
training core imports none of what the shell attaches to it as hooks."""
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import import_graph  # noqa: E402

MAX_LINES = 300
CORE = ["trainlab.engine.core", "trainlab.engine.run", "trainlab.engine.steppers", "trainlab.engine.training",
        "trainlab.engine.finish"]
HOOKED = ("trainlab.engine.trackers", "trainlab.sweep.optuna_search", "trainlab.sweep.trial_reporter", "trainlab.diagnose", "trainlab.engine.figures",
          "trainlab.app")


def test_no_import_runs_up_the_layers_and_there_is_no_cycle():
    edges = import_graph.graph()
    assert import_graph.upward_imports(edges) == []
    assert import_graph.cycles(edges) == []
    assert import_graph.main([]) == 0


def test_every_module_has_a_layer():
    for module in import_graph.graph():
        import_graph.layer_of(module)  # raises for a module no layer names


def test_an_upward_import_is_found():
    """The check itself: an engine module importing the shell is reported."""
    edges = {"trainlab.engine.core": {"trainlab.app.job"}, "trainlab.app.job": {"trainlab.engine.core"}}
    assert import_graph.upward_imports(edges) == [("trainlab.engine.core", "trainlab.app.job")]


def test_no_module_is_over_300_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "trainlab").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_training_core_imports_none_of_its_hooks():
    edges = import_graph.graph()
    for module in CORE:
        hooked = [t for t in edges[module] if t.startswith(HOOKED)]
        assert hooked == [], f"{module} imports {hooked}: attach it as a hook (trainlab.app.hooks)"


def test_the_seams_between_layers_are_typed():
    """Public functions and dataclass fields of the shell and the core take no Any or bare object."""
    loose = []
    for path in [*(ROOT / "trainlab" / "engine").glob("*.py"), *(ROOT / "trainlab" / "app").glob("*.py"),
                 ROOT / "trainlab" / "config.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            annotations = []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                annotations = [a.annotation for a in [*node.args.args, *node.args.kwonlyargs] if a.annotation]
                annotations += [node.returns] if node.returns else []
            elif isinstance(node, ast.AnnAssign):
                annotations = [node.annotation]
            for annotation in annotations:
                text = ast.unparse(annotation)
                if text in ("Any", "object", "'Any'", "'object'") or text.startswith(("Any |", "object |")):
                    loose.append(f"{path.name}:{node.lineno}: {text}")
    assert loose == []
