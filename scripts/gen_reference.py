"""The docs' Reference pages that come from the code: every config group's options with their keys,
defaults and descriptions (units are in the descriptions), read from the same schemas and registries
as `trainlab list`, and every command's `--help`.

mkdocs.yml names this file under `hooks:`, so `mkdocs build` / `mkdocs serve` generate the pages
in memory at each build: they cannot go stale, and nothing generated is committed. The hook also
makes the README, included as the home page, link the way it does on the repository host.

    python scripts/gen_reference.py OUT_DIR     # write the same pages as files, to read them
"""
from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # mkdocs imports hooks by file path; trainlab is importable once installed
    sys.path.insert(0, str(ROOT))

OPTIONS_DIR = "reference/options"
CLI_PAGE = "reference/cli.md"


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _shown(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, str) else str(value)


def key_rows(schema: type, skip=frozenset(), prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) for each field of a schema, nested schemas flattened to
    dotted keys: the walk `trainlab list` does (trainlab.app.catalogue.schema_keys), as rows."""
    from trainlab.app.catalogue import schema_keys

    return [(key, f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type)), _shown(value), note)
            for key, f, value, note, nested in schema_keys(schema, skip, prefix) if not nested]


def anchor(option: str) -> str:
    """The heading id of an option on its group's page (experiment=digits/activations has a slash)."""
    return option.replace("/", "-").replace("_", "-")


def _table(rows) -> list[str]:
    if not rows:
        return ["No keys."]
    out = ["| key | type | default | description (units) |", "|---|---|---|---|"]
    out += [f"| `{k}` | `{_cell(t)}` | `{_cell(d)}` | {_cell(n)} |" for k, t, d, n in rows]
    return out


def group_page(group: str) -> str:
    """One group's page: its options in `trainlab list` order, each with its keys."""
    import importlib

    from trainlab.app.catalogue import _first_comment
    from trainlab.app.compose import group_options
    from trainlab.schemas import COMBINABLE, GROUP_MODULES, SINGLE, registries, single_schema

    registry = registries()[group] if group in GROUP_MODULES else None
    how = f"`{group}=[a,b]` (options combine)" if group in COMBINABLE else f"`{group}=<option>`"
    lines = [f"# {group}", "", f"Choose with {how}; change a key with `{group}.<key>=value`. "
             f"Generated from the schemas at each docs build (`trainlab list {group}` prints the same).", ""]
    if group in GROUP_MODULES or group in SINGLE:
        doc = importlib.import_module(f"trainlab.schemas.{group}").__doc__ or ""
        lines += [doc.strip(), ""]
    for option in group_options(group):
        lines += [f"## {option} {{#{anchor(option)}}}", ""]
        if registry is not None and option in registry:
            entry = registry[option]
            lines += [entry.description, ""]
            lines += _table(key_rows(entry.schema, skip={"name"}))
        elif group in SINGLE and option == "default":
            lines += [_first_comment(group, option), ""]
            lines += _table(key_rows(single_schema(group)))
        else:
            lines += [f"A preset written by hand (`conf/{group}/{option}.yaml`): {_first_comment(group, option)}"]
            if group == "experiment" and "/" not in option:
                lines += ["", f"Its lesson: [{option}](../../lessons/{option}.md)."]
        lines.append("")
    return "\n".join(lines)


def index_page() -> str:
    from trainlab.app.compose import group_options, groups

    lines = ["# Config groups and options", "",
             "Every option of every config group, with its keys, their types, defaults and descriptions "
             "(units are written in the descriptions). These pages are generated from the schemas in "
             "`trainlab/schemas/` each time the site is built (`scripts/gen_reference.py`, a MkDocs hook), "
             "the same source `trainlab list` reads, so they match the installed code.", "",
             "| group | options |", "|---|---|"]
    for group in groups():
        links = ", ".join(f"[{o}]({group}.md#{anchor(o)})" for o in group_options(group))
        lines.append(f"| [{group}]({group}.md) | {links} |")
    return "\n".join(lines) + "\n"


def cli_page() -> str:
    """Every command's own `--help`, run as a user would run it (the command list is read from
    `trainlab --help`, so the page follows the CLI wherever its code lives)."""
    def helptext(*args: str) -> str:
        res = subprocess.run([sys.executable, "-m", "trainlab", *args], capture_output=True, text=True,
                             cwd=ROOT, timeout=120)
        return (res.stdout + res.stderr).strip()

    top = helptext("--help")
    commands = [line.split()[0] for line in top.split("commands:", 1)[1].splitlines()
                if line.startswith("  ") and not line.strip().startswith("-")]
    lines = ["# Commands", "", "Each command's `--help`, captured from the installed `trainlab` when this site "
             "was built (`scripts/gen_reference.py`).", "", "```text", "$ trainlab --help", top, "```", ""]
    # one process per command, a few at a time: most of a build's time is these interpreters starting
    with ThreadPoolExecutor(max_workers=4) as pool:
        helps = list(pool.map(lambda name: helptext(name, "--help"), commands))
    for name, text in zip(commands, helps):
        lines += [f"## {name}", "", "```text", f"$ trainlab {name} --help", text, "```", ""]
    return "\n".join(lines)


def pages() -> dict[str, str]:
    from trainlab.app.compose import groups

    out = {f"{OPTIONS_DIR}/index.md": index_page(), CLI_PAGE: cli_page()}
    out.update({f"{OPTIONS_DIR}/{g}.md": group_page(g) for g in groups()})
    return out


_BUILT: dict[str, str] = {}  # this build's generated pages, by source path


def on_files(files, config):
    """MkDocs hook: generate the pages before the nav is read. The options index and the Commands page
    also exist as short committed pages (so the README's links work on the repository host); their
    text is replaced at build time. The group pages exist only in the built site."""
    from mkdocs.structure.files import File

    _BUILT.clear()
    _BUILT.update(pages())
    for uri, text in _BUILT.items():
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, content=text))
    return files


def on_page_markdown(markdown, page, config, files):
    """MkDocs hook: the committed stand-ins get their generated text, and the home page is the README,
    whose links point into docs/ from the repository root (on the site, relative to docs/ itself)."""
    uri = page.file.src_uri
    if uri == "index.md":
        return (ROOT / "README.md").read_text().replace("](docs/", "](")
    return _BUILT.get(uri, markdown)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for uri, text in pages().items():
        path = Path(sys.argv[1]) / uri
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(path)
