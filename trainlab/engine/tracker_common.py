"""What every tracker is given (trainlab.engine.trackers, tracker_mlflow): the run's context, and its
rows and results as the flat numbers and tags a tracker stores."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Context:
    run_dir: Path
    config: dict          # the resolved config (plain containers)
    choices: dict         # group -> option (combinable groups: "a,b"), plus seed: the run's identity
    resumed: bool
    step: int             # the step the run (re)starts from
    sweep: str | None     # the sweep folder's name when this run is a sweep job
    tags: list = field(default_factory=list)    # the user's tags=[...]
    git: dict | None = None                     # {commit, dirty, repo} (trainlab.provenance)
    swept: list = field(default_factory=list)   # the keys the sweep varies (trainlab.sweep.job_names)


def numbers(row: dict) -> dict:
    """The numeric entries of a metrics row (Polyak's columns are None before its window)."""
    return {k: float(v) for k, v in row.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("step",)}


def flatten(node, prefix: str = "") -> dict:
    out = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out |= flatten(value, name + ".")
        else:
            out[name] = value
    return out


def final_metrics(summary: dict) -> dict:
    """The run's end result as flat numbers: best, final and test metrics."""
    out = {}
    for part in ("best", "final", "test"):
        for key, value in (summary.get(part) or {}).items():
            if key in ("epoch", "step", "lr", "train_penalty"):  # counters, not results
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                out[f"{part}_{key}"] = float(value)
    return out


def run_tags(ctx: Context) -> dict:
    """What every tracker shows as the run's tags: the chosen options (and set keys), the
    user's tags joined, the git commit."""
    tags = dict(ctx.choices)
    if ctx.tags:
        tags["tags"] = ",".join(ctx.tags)
    if ctx.git:
        tags["git_commit"], tags["git_dirty"] = ctx.git["commit"], ctx.git["dirty"]
    return tags
