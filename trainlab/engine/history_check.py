"""Before a run continues: does its metrics.csv still hold every evaluation last.pt says it made?

A resumed run appends to metrics.csv and keeps the rows up to its checkpoint. When rows were lost
(the file truncated, emptied or replaced), continuing would leave curves, `auc` and `epochs_to`
reading a partial history without a word. The rows cannot be rebuilt: last.pt holds the model and
counters of one moment, not the validation results of the earlier evaluations. So the resume is
refused, in one line naming the file. No torch here.
"""
from pathlib import Path

from trainlab.engine.metrics import MetricsFile
from trainlab.errors import FileError


TRAINING_STATE = ("model", "optimizer", "schedule", "counters", "rng", "data")


def check_resumable(run_dir: Path, state: dict) -> None:
    """FileError when last.pt lacks the training state (a best.pt or snapshot copied over it), or when
    metrics.csv holds fewer evaluation rows (up to the checkpoint's step) than last.pt's `counters`
    record. Checkpoints written before the count was kept are checked for the step-0 row and the best
    evaluation's row."""
    missing_state = [k for k in TRAINING_STATE if k not in state]
    if missing_state:
        raise FileError(Path(run_dir) / "checkpoints" / "last.pt", "holds no training state to resume from "
                        f"(no {', '.join(missing_state)}: a best.pt or snapshot copied over it?)")
    counters = state.get("counters") or {}
    step = counters.get("step", 0)
    path = Path(run_dir) / "metrics.csv"
    steps = []
    for row in MetricsFile(path).read():
        if None in row.values() or None in row:  # a torn row (fewer or more fields than the header): lost
            continue
        try:
            steps.append(int(row.get("step") or ""))
        except ValueError:
            continue
    kept = [s for s in steps if s <= step]
    expected = counters.get("evaluations")
    if expected:
        missing = expected - len(kept)
    else:
        needed = {0} | ({counters.get("best_step", 0)} if counters.get("best_value") is not None else set())
        missing = len(needed - set(kept))
    if missing > 0:
        state_of_file = "missing" if not path.exists() else f"holds {len(kept)} rows up to step {step}"
        raise FileError(path, f"{state_of_file}, but checkpoints/last.pt records {expected or 'more'} evaluations: "
                              f"{missing} lost rows cannot be rebuilt from the checkpoint; restore the file "
                              "(or start a new run) before resuming")
