"""Where configs come from, and the one place they are composed.

The configs live in the repository's top-level conf/. A wheel ships a copy of that folder
as trainlab/conf (setup.py's build step); an editable install or a source checkout reads
it in place. Every command composes through `compose_job` /
`hydra_config`, so the CLI, the sweep precheck, torchrun ranks and the diagnosis
commands all see the same config for the same overrides. No torch import here.
"""
import contextlib

from trainlab.errors import ConfigError
from trainlab.schemas.files import CONFIG_NAME, conf_dir, config_dirs  # noqa: F401 (also imported from here)


def groups() -> list[str]:
    return sorted({p.name for d in config_dirs() if d.is_dir() for p in d.iterdir()
                   if p.is_dir() and p.name not in ("hydra", "__pycache__")})


def group_options(group: str) -> list[str]:
    """The options of a group, nested ones by their path (experiment=digits/activations)."""
    return sorted({p.relative_to(d / group).with_suffix("").as_posix()
                   for d in config_dirs() for p in (d / group).rglob("*.yaml")})


def register_resolvers() -> None:
    """The resolvers the shipped configs use (run and sweep folder names)."""
    import re

    from omegaconf import OmegaConf

    def safe(text) -> str:  # a folder-name-safe, bounded version of Hydra's override_dirname
        text = re.sub(r"[^A-Za-z0-9=,._+\-\[\]]", "-", str(text))
        return text[:120] if text else "job"

    OmegaConf.register_new_resolver("trainlab_safe", safe, replace=True)
    OmegaConf.register_new_resolver("trainlab_suffix", lambda name: f"_{safe(name)}" if name else "", replace=True)
    from trainlab.sweep.job_names import register_resolver

    register_resolver()  # trainlab_job_name: a sweep job's folder name


@contextlib.contextmanager
def hydra_session():
    """Hydra initialized on the shipped configs for the duration (compose calls inside)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_resolvers()
    if GlobalHydra.instance().is_initialized():  # already inside one (a sweep's precheck): reuse it
        yield
        return
    try:
        with initialize_config_dir(str(conf_dir()), version_base=None):
            yield
    finally:
        GlobalHydra.instance().clear()


def compose_job(overrides: list[str], with_hydra: bool = False):
    """One job's composed config. Hydra's multi-line errors become one-line ConfigErrors."""
    from hydra import compose

    with hydra_session():
        try:
            return compose(config_name=CONFIG_NAME, overrides=list(overrides), return_hydra_config=with_hydra)
        except Exception as err:
            raise composition_error(err, overrides) from None


def composition_error(err: Exception, overrides: list[str]) -> ConfigError:
    text = str(err)
    cause = err.__cause__
    if type(cause).__name__ == "ValidationError" and getattr(cause, "full_key", None):  # a typed key's value
        value = next((o.partition("=")[2] for o in overrides if o.lstrip("+~").partition("=")[0] == cause.full_key),
                     getattr(cause, "value", None))
        return ConfigError(cause.full_key, value, f"a value of the key's type ({str(cause).splitlines()[0]})")
    for ov in overrides:
        key, _, value = ov.lstrip("+~").partition("=")
        if f"'{key}'" in text or f"Could not override '{key}'" in text:
            parent = key.rpartition(".")[0]
            return ConfigError(key, value, f"unknown key{_valid_keys_hint(parent, overrides, ov)}")
    return ConfigError("override", " ".join(overrides), text.splitlines()[0])


def _valid_keys_hint(parent: str, overrides: list[str], bad: str) -> str:
    from hydra import compose
    from omegaconf import OmegaConf

    try:
        cfg = compose(config_name=CONFIG_NAME, overrides=[o for o in overrides if o != bad])
        node = OmegaConf.select(cfg, parent) if parent else cfg
        keys = sorted(str(k) for k in node.keys()) if OmegaConf.is_dict(node) else []
    except Exception:
        keys = []
    where = f" in {parent}" if parent else ""
    return f"; valid keys{where}: {', '.join(keys)}" if keys else ""
