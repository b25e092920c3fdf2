"""What a run prints when it starts: its choices (the options and overrides that differ from the
defaults), and on request the whole composed config as a tree."""
from omegaconf import DictConfig, OmegaConf


def default_choices() -> dict[str, str]:
    """group -> option as conf/train.yaml's defaults list picks it."""
    import yaml

    from trainlab.app.compose import CONFIG_NAME, conf_dir

    out = {}
    for item in yaml.safe_load((conf_dir() / f"{CONFIG_NAME}.yaml").read_text()).get("defaults", []):
        if isinstance(item, dict):
            for key, value in item.items():
                if not key.startswith(("override ", "optional ", "hydra")):
                    out[key] = str(value)
    return out


def choices_block(choices: dict, overrides: list[str]) -> str:
    """The run's choices in one compact block: the group options that are not the defaults, then
    the key=value overrides (the full config: trainer.print_config=true, or --cfg job)."""
    defaults = default_choices()
    picked = [f"{g}={choices[g]}" for g in defaults if g in choices and str(choices[g]) != defaults[g]]
    keys = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in choices and not o.startswith("hydra")]
    same = " ".join(f"{g}={choices[g]}" for g in defaults if g in choices and str(choices[g]) == defaults[g])
    lines = ["choices:", f"  options:   {' '.join(picked) or '(all default)'}",
             f"  overrides: {' '.join(keys) or '(none)'}", f"  defaults:  {same}"]
    return "\n".join(lines)


def print_config_tree(cfg: DictConfig) -> None:
    """The whole composed config as a rich tree (trainer.print_config=true)."""
    from rich.console import Console
    from rich.tree import Tree

    def add(branch, node):
        for key, value in node.items():
            if isinstance(value, dict):
                add(branch.add(f"[bold]{key}[/bold]"), value)
            else:
                branch.add(f"{key}: {value!r}" if isinstance(value, str) else f"{key}: {value}")

    tree = Tree("[bold]config[/bold]")
    add(tree, OmegaConf.to_container(cfg, resolve=True))
    Console().print(tree)
