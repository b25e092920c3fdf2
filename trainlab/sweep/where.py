"""`trainlab table --where K=V`: keep the jobs that match every condition."""
from __future__ import annotations

from trainlab.errors import ConfigError
from trainlab.sweep.runs import RunRecord


def matches(record: RunRecord, key: str, value: str) -> bool:
    """Does the job have `value` at `key`? `tags` holds when `value` is one of its tags (summary.json);
    `status` is how it ended; any other key is an override, a group choice or a config value."""
    if key == "tags":
        tags = record.summary.get("tags") or record.config.get("tags") or []
        return value in [str(t) for t in tags]
    if key == "status":
        return record.status == value
    found = record.lookup(key)
    if found is None:
        return False
    if found == value:
        return True
    try:  # 0.1 and 1e-1, 2 and 2.0 are the same number
        return float(found) == float(value)
    except ValueError:
        return False


def keep_where(records: list[RunRecord], conditions: list[str]) -> list[RunRecord]:
    parsed = []
    for condition in conditions:
        key, sep, value = condition.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--where", condition, "KEY=VALUE, e.g. --where tags=baseline or --where optimizer=adam")
        parsed.append((key.strip(), value.strip()))
    kept = [r for r in records if all(matches(r, k, v) for k, v in parsed)]
    if not kept:
        raise ConfigError("--where", " ".join(conditions), f"no job of the {len(records)} matches it")
    return kept
