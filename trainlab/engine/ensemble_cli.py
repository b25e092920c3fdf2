"""`trainlab ensemble`: average the predicted probabilities of several trained models on the test set.

Members are the best checkpoints of run folders (or every job of a sweep
folder), optionally plus each run's snapshot checkpoints (`--snapshots`,
saved with trainer.snapshots=true). All members must come from the same
dataset and split, so they are scored on the same test examples.
"""
# The docstring above is the command's --help. Nothing here imports torch: the flags are
# parsed and the member checkpoints found (both bad input when wrong) before ensemble.py,
# the torch side, is imported, so --help and mistakes answer without loading torch.
import argparse
import json
from pathlib import Path

from trainlab.devices import check_device
from trainlab.errors import ConfigError
from trainlab.run_folder import check_writable


def member_checkpoints(paths: list[str], snapshots: bool) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            found.append(path)
            continue
        if not path.is_dir():
            raise ConfigError("PATH", raw, "a run folder, a sweep folder or a checkpoint file")
        run_dirs = [path] if (path / "checkpoints").is_dir() else sorted(p for p in path.iterdir() if (p / "checkpoints").is_dir())
        if not run_dirs:
            raise ConfigError("PATH", raw, "a run or sweep folder holding checkpoints/best.pt")
        for run in run_dirs:
            if (run / "checkpoints" / "best.pt").is_file():
                found.append(run / "checkpoints" / "best.pt")
            if snapshots:
                found += sorted((run / "checkpoints").glob("snapshot_e*.pt"))
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
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", help="write the result as JSON here")
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help was printed: an exit code, like every other command, not an exit
        if done.code in (0, None):
            return 0
        raise
    checkpoints = member_checkpoints(args.paths, args.snapshots)
    if args.out:
        if Path(args.out).is_dir():
            raise ConfigError("--out", args.out, "a file to write the JSON result to (it is a folder)")
        check_writable("--out", str(Path(args.out).absolute().parent))
    check_device("--device", args.device)
    from trainlab.engine.ensemble import ensemble

    result = ensemble(checkpoints, args.device)
    width = max(len(m["checkpoint"]) for m in result["members"])
    for m in result["members"]:
        print(f"{m['checkpoint']:<{width}}  test acc {100 * m['test_acc']:6.2f}%")
    mean = sum(m["test_acc"] for m in result["members"]) / result["n"]
    print(f"{'ensemble of ' + str(result['n']):<{width}}  test acc {100 * result['ensemble_test_acc']:6.2f}%"
          f"   (members' mean {100 * mean:.2f}%)")
    if args.out:
        try:
            Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        except OSError as err:
            raise ConfigError("--out", args.out, f"a file this process can write ({err.strerror})") from None
    return 0
