"""Bash completion without Hydra: subcommands, their flags, groups, options and keys.

`eval "$(trainlab train -sc install=bash)"` installs Hydra's bash function, which runs
`trainlab -sc query=bash` with the line in COMP_LINE at every TAB. Hydra answers by composing
the whole config (1-3 s a TAB); the answers here come from the config files themselves (a
directory listing, and one option's YAML for its keys), with no Hydra or torch import, so a
TAB answers in a Python start-up. What this does not cover (`hydra...` keys, `+`/`~` prefixes)
returns None and goes to Hydra's completion as before.
"""
from __future__ import annotations

import os
from pathlib import Path

# The flags of each command (tests/test_completion.py checks them against each command's --help).
# train's are Hydra's.
FLAGS = {
    "train": ("-m", "--multirun", "--cfg", "--resolve", "--package", "--info", "--help", "--hydra-help"),
    "resume": ("--help",), "resume-sweep": ("--help",), "list": ("--help",), "plot": ("--help",),
    "table": ("--metric", "--by", "--baseline", "--sort", "--format", "--out", "--no-figure", "--where", "--help"),
    "ensemble": ("--snapshots", "--top", "--by", "--per-row", "--device", "--out", "--help"),
    "check": ("--tolerance", "--examples", "--max-steps", "--lr", "--use-optimizer", "--out", "--help"),
    "inspect": ("--gaussian", "--gaussian-width", "--batch", "--out", "--help"),
    "gradcheck": ("--examples", "--entries", "--out", "--help"),
    "lr-find": ("--steps", "--lr-min", "--lr-max", "--out", "--help"),
    "eval": ("--help",),
}
# commands whose arguments are config overrides, as train's are
TAKES_OVERRIDES = ("train", "check", "inspect", "gradcheck", "lr-find")
TOP_FLAGS = ("--help", "--version")
EVAL_KEYS = ("split=test", "split=val", "split=train", "device=", "dataset=", "dataset.")


def _yaml(path: Path) -> dict:
    import yaml

    try:
        return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    except (OSError, yaml.YAMLError):
        return {}


class Configs:
    """The config groups as files: group -> option -> YAML path, and train.yaml's defaults."""

    def __init__(self):
        from trainlab.app.compose import config_dirs

        self.files: dict[str, dict[str, Path]] = {}
        for folder in config_dirs():
            if not folder.is_dir():
                continue
            for group in folder.iterdir():
                if group.is_dir() and group.name not in ("hydra", "__pycache__"):
                    options = self.files.setdefault(group.name, {})
                    for path in group.rglob("*.yaml"):
                        options.setdefault(path.relative_to(group).with_suffix("").as_posix(), path)
        from trainlab.app.compose import conf_dir

        train = _yaml(conf_dir() / "train.yaml")
        self.defaults: dict[str, list[str]] = {}
        for entry in train.get("defaults", []):
            if isinstance(entry, dict):
                for key, value in entry.items():
                    if key in self.files and isinstance(value, str):
                        self.defaults[key] = [value]
        self.top = [k for k in train if k not in ("defaults", "hydra")]

    def node(self, group: str, chosen: list[str]) -> dict:
        """The keys of a group as composed for the chosen options (combinable ones sit under their names)."""
        merged: dict = {}
        for option in chosen:
            path = self.files.get(group, {}).get(option)
            if path is not None:
                merged |= _yaml(path)
        return merged


def _chosen(words: list[str], configs: Configs) -> dict[str, list[str]]:
    """group -> options chosen on the line (`optimizer=sgd`, `regularizer=[l2,dropout]`), else the defaults."""
    chosen = {g: list(v) for g, v in configs.defaults.items()}
    for word in words:
        key, sep, value = word.lstrip("+").partition("=")
        if sep and key in configs.files and value:
            chosen[key] = [v.strip() for v in value.strip("[]").split(",") if v.strip()]
    return chosen


def _override_candidates(word: str, words: list[str]) -> list[str] | None:
    if word.startswith(("hydra", "+", "~")):
        return None  # Hydra's own groups and prefixed overrides: its completion knows them
    configs = Configs()
    key, sep, _ = word.partition("=")
    if sep:
        if key in configs.files:
            return [f"{key}={option}" for option in sorted(configs.files[key])]
        return [] if "." in key or key in configs.top else None
    if "." not in word:
        # `group.` only for a group that has an option by default (experiment has none)
        out = [f"{g}{end}" for g in sorted(configs.files) for end in ("=", ".") if end == "=" or g in configs.defaults]
        return out + [f"{k}=" for k in configs.top]
    group, *path = word.split(".")
    if group not in configs.files:
        return None
    node = configs.node(group, _chosen(words, configs).get(group, []))
    prefix = group
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return []
        prefix += f".{part}"
    return [f"{prefix}.{k}{'.' if isinstance(v, dict) and v else '='}" for k, v in sorted(node.items())]


def candidates(line: str, point: int | None = None) -> list[str] | None:
    """The words offered for the last word of `line` up to `point` (bash then keeps those starting
    with it); None where Hydra's completion should answer."""
    text = line[:len(line) if point is None else point]
    words = text.split()
    if text.endswith(" ") or not words:
        words.append("")
    if len(words) <= 2:  # the command itself
        return [*FLAGS, *TOP_FLAGS]
    command, word = words[1], words[-1]
    if command not in FLAGS:
        return []
    if word.startswith("-"):
        return list(FLAGS[command])
    if command in TAKES_OVERRIDES:
        return _override_candidates(word, words[2:-1])
    if command == "eval" and len(words) > 3:
        if word.startswith("dataset="):
            return [f"dataset={o}" for o in sorted(Configs().files.get("dataset", {}))]
        return list(EVAL_KEYS)
    return []  # a folder or file: bash's own file completion takes over (`complete -o default`)


def answer(env=os.environ) -> str | None:
    """What `trainlab -sc query=bash` prints (one candidate a line), or None to ask Hydra."""
    line = env.get("COMP_LINE", "")
    point = env.get("COMP_POINT", "")
    found = candidates(line, int(point) if point.isdigit() else None)
    return None if found is None else "\n".join(found)
