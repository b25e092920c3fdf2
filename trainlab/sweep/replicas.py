"""A sweep's seed replicates composed once.

Hydra composes every job of a sweep from scratch (defaults tree, YAML files, merges): about
0.2-0.4 s a job on a small CPU, more than a 1-epoch job of the default run trains. Jobs that
differ only in a plain `seed=N` compose to the same config but for three nodes: `seed`
itself, the override in `hydra.overrides.task`, and `hydra.job.override_dirname` (from
which the job's folder name is interpolated). `ReplicaComposer` wraps Hydra's config loader:
the first job of such a group is composed by Hydra, each further one is a copy of it with
those three nodes set as Hydra would set them (tests/test_sweeps.py compares the two
byte for byte). Any other job (no seed, a seed with a prefix or a sweep value, several seeds)
goes to Hydra as before. The precheck composes replicates once for the same reason
(trainlab.app.precheck.validate_jobs).
"""
import copy


class ReplicaComposer:
    """Hydra's ConfigLoader, with `load_sweep_config` reusing a composition across seed replicates."""

    def __init__(self, loader):
        self.loader = loader
        self.composed: dict[tuple, tuple[object, str]] = {}  # the other overrides -> (first job's config, its seed override)

    def __getattr__(self, name):
        if name in ("loader", "composed"):  # not set yet (unpickling): no recursion into __getattr__
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __getstate__(self):
        return {"loader": self.loader, "composed": {}}  # a launcher's worker process composes its own

    def __setstate__(self, state):
        self.__dict__.update(state)

    def load_sweep_config(self, master_config, sweep_overrides: list[str]):
        from omegaconf import OmegaConf, open_dict, read_write

        overrides = list(sweep_overrides)
        seed_at = _plain_seed(overrides)
        if seed_at is None:
            return self.loader.load_sweep_config(master_config, overrides)
        seed = _seed_value(overrides[seed_at])
        key = (seed_at, tuple(o for i, o in enumerate(overrides) if i != seed_at))
        if key not in self.composed or seed is None:
            cfg = self.loader.load_sweep_config(master_config, overrides)
            if seed is not None:
                self.composed[key] = (copy.deepcopy(cfg), overrides[seed_at])
            return cfg
        template, line = self.composed[key]
        task = list(template.hydra.overrides.task)
        if task.count(line) != 1:  # not where it is expected: let Hydra compose it
            return self.loader.load_sweep_config(master_config, overrides)
        task[task.index(line)] = overrides[seed_at]
        cfg = copy.deepcopy(template)
        with read_write(cfg), open_dict(cfg):
            cfg.seed = seed
            hydra = cfg.hydra
            hydra.overrides.task = task
            hydra.job.override_dirname = _override_dirname(overrides, hydra.job.config.override_dirname)
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg


def _plain_seed(overrides: list[str]) -> int | None:
    """The index of the one plain `seed=VALUE` override (no +/~ prefix), or None."""
    found = [i for i, o in enumerate(overrides) if o.partition("=")[0].strip() == "seed"]
    return found[0] if len(found) == 1 else None


def _seed_value(override: str):
    """The integer Hydra reads from `seed=VALUE`; None for anything else (a list, a sweep, a string)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_override(override)
    except Exception:
        return None
    if parsed.is_sweep_override() or parsed.package is not None or parsed.type.name != "CHANGE":
        return None
    value = parsed.value()
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _override_dirname(overrides: list[str], settings) -> str:
    """hydra.job.override_dirname as Hydra computes it from a job's (non-hydra) overrides."""
    from hydra._internal.config_loader_impl import get_overrides_dirname
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = [o for o in OverridesParser.create().parse_overrides(overrides) if not o.is_hydra_override()]
    return get_overrides_dirname(overrides=parsed, exclude_keys=list(settings.exclude_keys),
                                 item_sep=settings.item_sep, kv_sep=settings.kv_sep)
