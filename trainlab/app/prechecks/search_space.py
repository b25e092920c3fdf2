"""An Optuna search space, read as the sweeper will read it (trainlab.sweep.optuna_search.split_axes),
and the job config validated at both ends of every interval: a range the job would refuse
(optimizer.lr=interval(-1,1)) is one line now, not a failed trial later."""
from __future__ import annotations

from trainlab.errors import ConfigError


def check_search_space(params: dict, task: list[str]) -> None:
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import IntervalSweep

    from trainlab.sweep.optuna_search import split_axes

    raw = [*(f"{k}={v}" for k, v in params.items()), *task]
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    try:
        overrides = parser.parse_overrides(raw)
    except Exception as err:
        raise ConfigError("hydra.sweeper.params", " ".join(raw), str(err).splitlines()[0]) from None
    try:
        space, replicates = split_axes(overrides)
    except ValueError as err:  # an Optuna distribution refusing its bounds
        raise ConfigError("hydra.sweeper.params", " ".join(raw), str(err).splitlines()[0]) from None
    axes = {o.get_key_element(): o for o in overrides}  # a later value of a key wins, as in split_axes
    ranges = {key: axes[key] for key in space if isinstance(axes[key].value(), IntervalSweep)}
    if not ranges:
        return
    base = [*replicates[0]] + [f"{k}={next(iter(axes[k].sweep_string_iterator()))}" for k in space if k not in ranges]
    for end in ("start", "end"):
        job = base + [f"{k}={_number(getattr(o.value(), end))}" for k, o in ranges.items()]
        _validate_job(job, ranges)


def _number(value) -> str:
    from trainlab.sweep.search import format_float

    return str(value) if isinstance(value, int) else format_float(value)


def _validate_job(job: list[str], ranges: dict) -> None:
    from trainlab.app.compose import compose_job
    from trainlab.config import validate

    try:
        validate(compose_job(job))
    except ConfigError as err:
        searched = next((k for k in ranges if err.key and k.lstrip("+~").endswith(err.key)), None)
        if searched is None:
            raise
        text = ranges[searched].input_line.partition("=")[2]
        raise ConfigError(searched, text, f"a range whose every value is valid; at {err.value!r}: {err.valid}") from None
