"""Read a sweep folder's job folders into records.

A job folder is whatever Hydra and the engine left behind: `.hydra/` (the
job's overrides, its resolved config, Hydra's own config), `summary.json` and
`metrics.csv`. Any of these may be missing or half-written (a job killed while
writing, a folder copied without its hidden files), so the readers here return
an empty value plus a note instead of raising: one broken job must never hide
the other ninety-nine.

Job folders are recognised by their contents, never by their names: the name
Hydra gives them depends on `hydra.sweep.subdir`, which users change.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from trainlab.errors import ConfigError

# libyaml's parser where PyYAML was built with it: the same safe loading (the same Python resolvers and
# constructors), about 5x faster on a job's .hydra files, which a sweep's table reads for every job
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Overrides that say *which replicate* a job is rather than *what* it tests:
# they are collapsed into mean ± std and never become table rows by default.
REPLICATE_KEYS = ("seed", "dataset.cv.fold")

# Outcomes written by the engine, plus "missing" for a job with no readable
# summary (crashed before writing one, or still running).
STATUSES = ("completed", "diverged", "failed", "interrupted", "missing")


@dataclass
class RunRecord:
    path: Path
    job: int | None  # hydra.job.num; None when hydra.yaml is unreadable
    overrides: dict[str, str]  # override key -> value, exactly as typed
    choices: dict[str, str]  # config group -> chosen option (hydra.runtime.choices)
    config: dict  # the resolved config, {} when unreadable
    summary: dict  # summary.json, {} when missing or unreadable
    status: str
    metrics: dict[str, list[float | None]]  # metrics.csv column -> values per evaluation
    problems: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def factors(self) -> dict[str, str]:
        """The overrides that define the configuration (replicate keys removed)."""
        return {k: v for k, v in self.overrides.items() if k not in REPLICATE_KEYS}

    def lookup(self, key: str) -> str | None:
        """The job's value for an override key, as a string.

        A key overridden in only some jobs (sweeps combined from several folders,
        an `experiment` preset that sets it) is read from the group choices or the
        resolved config instead, so every job gets a comparable value.
        """
        if key in self.overrides:
            return self.overrides[key]
        if key in self.choices:
            return self.choices[key]
        node = self.config
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        if isinstance(node, (dict, list)) or node is None:
            return None
        return str(node)

    def summary_value(self, path: str) -> float | None:
        """A numeric entry of summary.json by dotted path (`best.val_acc`), else None."""
        node = self.summary
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        # bool is an int subclass; a flag is not a metric
        if isinstance(node, bool) or not isinstance(node, (int, float)):
            return None
        return float(node)

    def last(self, column: str) -> float | None:
        """The last recorded value of a metrics.csv column."""
        for value in reversed(self.metrics.get(column, [])):
            if value is not None:
                return value
        return None

    def curve(self, column: str) -> tuple[list[float], list[float]]:
        """(epochs, values) of a metrics.csv column, one point per epoch.

        When the engine evaluates several times per epoch, the last evaluation of
        each epoch is kept, so curves of runs with different eval cadences still
        line up on the same x values.
        """
        xs = self.metrics.get("epoch") or self.metrics.get("step") or []
        per_x: dict[float, float] = {}
        for x, y in zip(xs, self.metrics.get(column, [])):
            if x is not None and y is not None:
                per_x[x] = y
        keys = sorted(per_x)
        return keys, [per_x[k] for k in keys]


def parse_override(text: str) -> tuple[str, str]:
    """Split a Hydra override into (key, value).

    `+key=v` (add) and `++key=v` (force-add) set the same key as `key=v`;
    `~key` (delete) has no value and is recorded as "~".
    """
    text = str(text).strip()
    if text.startswith("~"):
        key, _, value = text[1:].partition("=")
        return key, value or "~"
    key, _, value = text.lstrip("+").partition("=")
    return key, value


def is_job_dir(path: Path) -> bool:
    return path.is_dir() and any(
        (path / name).exists() for name in (".hydra", "summary.json", "metrics.csv")
    )


def find_job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(p for p in sweep_dir.iterdir() if not p.name.startswith(".") and is_job_dir(p))


def load_sweep(sweep_dir: str | Path) -> list[RunRecord]:
    """Every job of a sweep folder, in job-number order.

    Raises ConfigError (one line, names the folder) when the folder does not
    exist or holds no job folders; problems inside a job only add notes.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ConfigError("SWEEP_DIR", str(sweep_dir), "no such folder; pass a sweep folder such as outputs/sweeps/<sweep>")
    job_dirs = find_job_dirs(sweep_dir)
    if not job_dirs:
        raise ConfigError(
            "SWEEP_DIR", str(sweep_dir),
            "it holds no job folders (subfolders with .hydra/, summary.json or metrics.csv)",
        )
    records = [load_job(d) for d in job_dirs]
    # jobs whose number is unreadable go last, in folder-name order
    records.sort(key=lambda r: (r.job is None, r.job if r.job is not None else 0, r.name))
    return records


def load_sweeps(sweep_dirs: list[str | Path]) -> list[RunRecord]:
    """Every job of several sweep folders, each job once: a folder named twice (`S S`, `S S/`),
    or sweeps that share job folders (links), would otherwise count a job twice, doubling n and
    shrinking the spread. Jobs are the same when their folders resolve to the same path."""
    records, seen = [], set()
    for sweep_dir in sweep_dirs:
        for record in load_sweep(sweep_dir):
            if (where := record.path.resolve()) not in seen:
                seen.add(where)
                records.append(record)
    return records


def load_job(job_dir: Path) -> RunRecord:
    problems: list[str] = []
    hydra_dir = job_dir / ".hydra"
    hydra = _read_yaml(hydra_dir / "hydra.yaml", problems)
    hydra = hydra.get("hydra", {}) if isinstance(hydra, dict) else {}
    config = _read_yaml(hydra_dir / "config.yaml", problems)

    overrides_list = _read_yaml(hydra_dir / "overrides.yaml", problems)
    if not isinstance(overrides_list, list):
        # hydra.yaml repeats the task overrides; use them when overrides.yaml is gone
        overrides_list = _dig(hydra, "overrides", "task") or []
    overrides = {}
    for item in overrides_list:
        key, value = parse_override(item)
        if key and not key.startswith("hydra."):  # launcher settings are not factors
            overrides[key] = value

    choices = _dig(hydra, "runtime", "choices") or {}
    choices = {str(k): str(v) for k, v in choices.items() if v is not None and not str(k).startswith("hydra/")}
    job = _dig(hydra, "job", "num")

    summary = _read_json(job_dir / "summary.json", problems)
    status = summary.get("status")
    status = status.strip().lower() if isinstance(status, str) else ""
    if not status:
        status = "missing"
        if summary:
            problems.append("summary.json has no status; counted as missing")

    return RunRecord(
        path=job_dir,
        job=job if isinstance(job, int) else None,
        overrides=overrides,
        choices=choices,
        config=config if isinstance(config, dict) else {},
        summary=summary,
        status=status,
        metrics=read_metrics(job_dir / "metrics.csv", problems),
        problems=problems,
    )


def read_metrics(path: Path, problems: list[str]) -> dict[str, list[float | None]]:
    """metrics.csv as columns of floats (None for empty or non-numeric cells)."""
    if not path.exists():
        return {}
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        problems.append(f"metrics.csv unreadable ({err})")
        return {}
    if not rows:
        return {}
    header = rows[0]
    columns: dict[str, list[float | None]] = {name: [] for name in header}
    for row in rows[1:]:
        if len(row) != len(header):
            continue  # the half-written last line of a job killed mid-write
        for name, cell in zip(header, row):
            columns[name].append(_to_float(cell))
    return columns


def _to_float(cell: str) -> float | None:
    # "nan"/"inf" parse as floats and stay: a diverged curve should look diverged
    try:
        return float(cell)
    except ValueError:
        return None


def _read_yaml(path: Path, problems: list[str]):
    if not path.exists():
        return {}
    try:
        return yaml.load(path.read_text(), Loader=SAFE_LOADER) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        problems.append(f".hydra/{path.name} unreadable ({type(err).__name__})")
        return {}


def _read_json(path: Path, problems: list[str]) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        problems.append(f"summary.json unreadable ({type(err).__name__}); counted as missing")
        return {}
    if not isinstance(data, dict):
        problems.append("summary.json is not a JSON object; counted as missing")
        return {}
    return data


def _dig(node, *keys):
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node
