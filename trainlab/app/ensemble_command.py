"""`trainlab ensemble`: average the predicted probabilities of several trained models on the test set.

Members are the best checkpoints of run folders (or every job of a sweep
folder), or with `--top K --by val_acc` of the K completed jobs with the best
validation metric; in a cross-validation sweep those K come from K different
folds (a CV ensemble). `--per-row` makes one ensemble per row of the sweep's
table (the jobs that differ only in seed or CV fold) and prints them as a table.
A checkpoint or job named twice is one member. `--snapshots` adds each run's snapshot checkpoints
(saved with trainer.snapshots=true): every epoch counts once, so best.pt is
left out when a snapshot of its epoch is there. All members must come from the
same dataset and test split, so they are scored on the same test examples.
"""
# The docstring above is the command's --help. Nothing here imports torch: the flags are
# parsed and the member checkpoints found (both bad input when wrong) before ensemble.py,
# the torch side, is imported, so --help and mistakes answer without loading torch.
import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path

from trainlab.devices import check_device
from trainlab.errors import ConfigError
from trainlab.app.run_folder import check_writable


def _run_dirs(raw: str) -> list[Path]:
    """The run folders a PATH names: itself, or a sweep folder's jobs."""
    path = Path(raw)
    if not path.is_dir():
        raise ConfigError("PATH", raw, "a run folder, a sweep folder or a checkpoint file")
    run_dirs = [path] if (path / "checkpoints").is_dir() else sorted(p for p in path.iterdir() if (p / "checkpoints").is_dir())
    if not run_dirs:
        raise ConfigError("PATH", raw, "a run or sweep folder holding checkpoints/best.pt")
    return run_dirs


def member_checkpoints(paths: list[str], snapshots: bool) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        if Path(raw).is_file():
            found.append(Path(raw))
            continue
        for run in _run_dirs(raw):
            best = run / "checkpoints" / "best.pt"
            shots = sorted((run / "checkpoints").glob("snapshot_e*.pt")) if snapshots else []
            # the snapshot of the best epoch holds best.pt's weights: each epoch is one member
            if best.is_file() and not (shots and _best_epoch(run) in {_snapshot_epoch(s) for s in shots}):
                found.append(best)
            found += shots
    # a folder named twice, or a sweep and one of its jobs: each checkpoint is one member
    found = list({path.resolve(): path for path in found}.values())
    if not found:
        raise ConfigError("PATH", " ".join(paths), "folders with checkpoints/best.pt (were checkpoints saved?)")
    return found


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line through the CLI, not argparse's usage dump
        raise ConfigError("ensemble", " ".join(self._argv), message)


def ensemble_main(argv: list[str]) -> int:
    parser = _Parser(prog="trainlab ensemble", description=__doc__)
    parser._argv = list(argv)
    parser.add_argument("paths", nargs="+", help="run folders, sweep folders or checkpoint files")
    parser.add_argument("--snapshots", action="store_true", help="also use each run's snapshot_eNNN.pt checkpoints")
    parser.add_argument("--top", type=int, metavar="K", help="only the K completed jobs best by --by "
                        "(one per fold in a cross-validation sweep)")
    parser.add_argument("--by", default="val_acc", choices=tuple(RANK_BY), help="the validation metric of each job's "
                        "best checkpoint that --top ranks by (default: val_acc)")
    parser.add_argument("--per-row", action="store_true", help="one ensemble per row of the sweep's table "
                        "(the jobs that differ only in seed or CV fold), printed as a table")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", help="write the result as JSON here")
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help was printed: an exit code, like every other command, not an exit
        if done.code in (0, None):
            return 0
        raise
    paths, picks = args.paths, None
    if args.per_row:
        if args.top is not None:
            raise ConfigError("--top", args.top, "either --top or --per-row (an ensemble of every row's jobs)")
        return per_row_main(args.paths, args.snapshots, args.device, args.out)
    if args.top is not None:
        picks = top_runs(args.paths, args.top, args.by)
        for pick in picks:
            fold = "" if pick.fold is None else f"  fold {pick.fold}"
            print(f"selected {pick.run}  {args.by} {pick.value:.4f}{fold}")
        paths = [str(pick.run) for pick in picks]
    checkpoints = member_checkpoints(paths, args.snapshots)
    check_out_and_device(args.out, args.device)
    from trainlab.engine.ensemble import ensemble

    result = ensemble(checkpoints, args.device)
    if picks is not None:
        result["selected"] = [{"run": str(p.run), args.by: p.value, "fold": p.fold} for p in picks]
    width = max(len(m["checkpoint"]) for m in result["members"])
    for m in result["members"]:
        print(f"{m['checkpoint']:<{width}}  test acc {100 * m['test_acc']:6.2f}%")
    mean = sum(m["test_acc"] for m in result["members"]) / result["n"]
    print(f"{'ensemble of ' + str(result['n']):<{width}}  test acc {100 * result['ensemble_test_acc']:6.2f}%"
          f"   (members' mean {100 * mean:.2f}%)")
    write_json(args.out, result)
    return 0


def check_out_and_device(out: str | None, device: str) -> None:
    if out:
        if Path(out).is_dir():
            raise ConfigError("--out", out, "a file to write the JSON result to (it is a folder)")
        check_writable("--out", str(Path(out).absolute().parent))
    check_device("--device", device)


def write_json(out: str | None, result: dict) -> None:
    if out:
        try:
            Path(out).write_text(json.dumps(result, indent=2) + "\n")
        except OSError as err:
            raise ConfigError("--out", out, f"a file this process can write ({err.strerror})") from None


def _snapshot_epoch(path: Path) -> int | None:
    match = re.fullmatch(r"snapshot_e(\d+)\.pt", path.name)
    return int(match.group(1)) if match else None


def _best_epoch(run: Path) -> int | None:
    """The epoch of a run's best.pt: from summary.json, else (a run stopped before writing one) the checkpoint."""
    try:
        return int(json.loads((run / "summary.json").read_text())["best"]["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    from trainlab.engine import checkpoint as ckpt

    epoch = ckpt.load(run / "checkpoints" / "best.pt").get("epoch")
    return int(epoch) if epoch is not None else None


# --top K --by M: rank a sweep's completed jobs by the validation metric of their best checkpoint
RANK_BY = {"val_acc": max, "val_loss": min}


@dataclass
class Pick:
    run: Path
    value: float
    fold: str | None   # dataset.cv.fold of a cross-validation job


def top_runs(paths: list[str], k: int, by: str) -> list[Pick]:
    """The K completed jobs with the best `by`. When the jobs come from several CV folds, the K
    come from K different folds: each fold's best job, best folds first."""
    from trainlab.sweep.runs import load_job

    if k < 1:
        raise ConfigError("--top", k, "a number of members >= 1")
    if any(Path(raw).is_file() for raw in paths):
        raise ConfigError("--top", k, "run or sweep folders to rank, not checkpoint files")
    candidates = []
    runs = {run.resolve(): run for raw in paths for run in _run_dirs(raw)}  # a job named twice is ranked once
    for run in runs.values():
        record = load_job(run)
        value = record.summary_value(f"best.{by}")
        if record.status == "completed" and value is not None and (run / "checkpoints" / "best.pt").is_file():
            candidates.append(Pick(run, value, _fold(record)))
    best_first = sorted(candidates, key=lambda p: p.value, reverse=RANK_BY[by] is max)  # stable: ties keep job order
    folds = {p.fold for p in candidates}
    if len(folds) > 1:  # a CV sweep: one member per fold
        seen: set = set()
        best_first = [p for p in best_first if not (p.fold in seen or seen.add(p.fold))]
    if k > len(best_first):
        what = (f"{len(folds)} folds (one member per fold)" if len(folds) > 1
                else f"{len(best_first)} completed jobs with best.pt")
        raise ConfigError("--top", k, f"at most {len(best_first)}: {' '.join(paths)} has {what}")
    return best_first[:k]


def _fold(record) -> str | None:
    """The job's CV fold, or None when it did not use cross-validation. Read from the job's Hydra
    config, else from the overrides its summary.json recorded (a run folder without .hydra)."""
    recorded = dict(o.lstrip("+").split("=", 1) for o in record.summary.get("overrides") or [] if "=" in o)
    folds = record.lookup("dataset.cv.folds") or recorded.get("dataset.cv.folds")
    if folds is None or not str(folds).isdigit() or int(folds) < 2:
        return None
    return record.lookup("dataset.cv.fold") or recorded.get("dataset.cv.fold", "0")


# -- --per-row: one ensemble per row of the sweep's table -----------------------------------------
# A row is what `trainlab table` makes one by default: the jobs that agree on every swept factor and
# differ only in their replicate keys (seed, CV fold). This is the question a seed sweep asks
# (`experiment=ema_ensembles`: does averaging the five seeds of each rate beat one model of that
# rate?); one ensemble of every job would mix the rows' configurations.

def sweep_rows(paths: list[str]) -> list[tuple[str, dict, list[Path]]]:
    """(label, row values, job folders with checkpoints) per row, in sweep order."""
    from trainlab.sweep.aggregate import swept_keys
    from trainlab.sweep.runs import load_sweeps

    for raw in paths:
        if Path(raw).is_file() or (Path(raw) / "checkpoints").is_dir():
            raise ConfigError("--per-row", raw, "sweep folders (their jobs are grouped into the table's rows); "
                              "a run folder or checkpoint is one member: leave out --per-row")
    records = load_sweeps(paths)
    keys = swept_keys(records)
    rows: dict[tuple, tuple[str, dict, list[Path]]] = {}
    for record in records:
        values = {k: record.lookup(k) for k in keys}
        label = ", ".join(f"{k}={'—' if v is None else v}" for k, v in values.items()) or "all jobs"
        row = rows.setdefault(tuple(values.values()), (label, values, []))
        if (record.path / "checkpoints").is_dir():
            row[2].append(record.path)
    found = [row for row in rows.values() if row[2]]
    if not found:
        raise ConfigError("PATH", " ".join(paths), "sweep folders whose jobs saved checkpoints/best.pt")
    return found


def per_row_main(paths: list[str], snapshots: bool, device: str, out: str | None) -> int:
    rows = sweep_rows(paths)
    members = [member_checkpoints([str(p) for p in jobs], snapshots) for _, _, jobs in rows]
    check_out_and_device(out, device)
    from trainlab.engine.ensemble import ensemble

    results = []
    for (label, values, _), checkpoints in zip(rows, members):
        result = ensemble(checkpoints, device)
        result["members_mean_test_acc"] = sum(m["test_acc"] for m in result["members"]) / result["n"]
        results.append({"row": values, "label": label, **result})
    print_rows(results)
    write_json(out, {"rows": results})
    return 0


def print_rows(results: list[dict]) -> None:
    head = ("row", "members", "members' mean test acc (%)", "ensemble test acc (%)", "gain (pp)")
    lines = [(r["label"], str(r["n"]), f"{100 * r['members_mean_test_acc']:.2f}",
              f"{100 * r['ensemble_test_acc']:.2f}",
              f"{100 * (r['ensemble_test_acc'] - r['members_mean_test_acc']):+.2f}") for r in results]
    widths = [max(len(line[i]) for line in [head, *lines]) for i in range(len(head))]
    for line in [head, *lines]:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))))
