"""Short, readable names for a sweep's job folders: `<num>_<short>`.

Hydra names a job folder after all of its overrides (`0_logger=tensorboard,optimizer=sgd,
trainer.epochs=3,trainer.threads=1`, up to 120 characters): the tracker UIs, which show the
folder name as the run's name, cut it short. The short part here holds only the keys the sweep
varies (`0_optimizer=sgd`), at most MAX_SHORT characters; every override stays in the job's
`.hydra/overrides.yaml`, from which resume-sweep and the table identify a job (never by its name).

The sweeper knows which keys vary; it writes them to SWEPT_FILE in the sweep folder before it
launches, and the folder-name resolver (`trainlab_job_name`, used by `hydra.sweep.subdir`) reads
them there: a launcher's worker process (joblib, submitit) sees the same file.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

MAX_SHORT = 40
SWEPT_FILE = "swept_keys.yaml"
# never part of a name: where and how a job runs, not what it tests
NOT_NAMING = ("logger", "trainer.threads", "trainer.device", "trainer.progress", "resume",
              "dataset.root", "dataset.download", "name")


def _key_value(override: str) -> tuple[str, str]:
    key, _, value = str(override).strip().lstrip("+~").partition("=")
    return key.strip(), value.strip()


def _names(key: str) -> bool:
    return not key.startswith("hydra.") and not any(key == k or key.startswith(k + ".") for k in NOT_NAMING)


def swept_keys(jobs: list[list[str]]) -> list[str]:
    """The keys whose value differs between `jobs` (each a list of overrides), in the order they
    first appear; with a single job (nothing varies) every key it sets that can name it."""
    values: dict[str, set[str]] = {}
    for job in jobs:
        for override in job:
            key, value = _key_value(override)
            values.setdefault(key, set()).add(value)
    varied = [k for k, v in values.items() if len(v) > 1 or len(jobs) == 1]
    return [k for k in varied if _names(k)]


def write_swept_keys(sweep_dir: Path, keys: list[str]) -> None:
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / SWEPT_FILE).write_text(yaml.safe_dump({"keys": list(keys)}, sort_keys=False))


def read_swept_keys(sweep_dir: Path) -> list[str] | None:
    try:
        keys = (yaml.safe_load((sweep_dir / SWEPT_FILE).read_text()) or {}).get("keys")
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    return [str(k) for k in keys] if isinstance(keys, list) else None


def short_name(overrides: list[str], keys: list[str] | None) -> str:
    """The readable part of a job folder's name: `key=value` of the swept `keys` (None: every key
    that can name a job), each key by its last dotted part unless two keys share it."""
    pairs = [_key_value(o) for o in overrides]
    chosen = [(k, v) for k, v in pairs if _names(k) and (keys is None or k in keys)]
    tails = [k.rsplit(".", 1)[-1] for k, _ in chosen]
    parts = [f"{tail if tails.count(tail) == 1 else key}={_plain(value)}" for (key, value), tail in zip(chosen, tails)]
    text = re.sub(r"[^A-Za-z0-9=,._+\-]", "", ",".join(parts))
    return text[:MAX_SHORT].rstrip(",") or "job"


def _plain(value: str) -> str:
    """A value without brackets or quotes; a list's commas become + (`regularizer=l2+dropout`):
    the comma separates the keys."""
    return re.sub(r"[\\[\\]()'\" ]", "", value).replace(",", "+")


def job_folder_name(sweep_dir, task_overrides) -> str:
    """The resolver behind `hydra.sweep.subdir`'s short part (the job number is prefixed there)."""
    keys = read_swept_keys(Path(str(sweep_dir)))
    return short_name([str(o) for o in (task_overrides or [])], keys)


def register_resolver() -> None:
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("trainlab_job_name", job_folder_name, replace=True)
