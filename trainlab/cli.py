"""`trainlab <command>`: train, resume, and the commands later modules add.

Each command is a function taking its argument list and returning an exit
code. Bad input is one line on stderr and exit code 2, with no traceback
unless HYDRA_FULL_ERROR=1 or TRAINLAB_VERBOSE=1 is set.
"""
import sys
from pathlib import Path

from trainlab.errors import ConfigError

USAGE = """usage: trainlab <command> [args]

commands:
  train [overrides]        train one model (or a sweep with -m); `trainlab train --help` lists the config groups
  resume RUN_DIR [overrides]   continue a run from its checkpoints/last.pt, in the same folder
  table SWEEP_DIR ...      the ablation table of a sweep (mean ± std over seeds/folds)
  ensemble PATH ...        average the predictions of trained runs (or a sweep's jobs) on the test set
"""


def train_command(args: list[str]) -> int:
    from trainlab import app
    from trainlab.precheck import precheck

    precheck(args)
    app.OUTCOMES.clear()
    sys.argv = ["trainlab train", *args]
    try:
        app.train_app()
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            return _exit_code(exit_.code)
    return _after_jobs(app.OUTCOMES)


def _exit_code(code) -> int:
    return code if isinstance(code, int) else 1


def _after_jobs(outcomes: list[dict]) -> int:
    """Exit code of a train command: non-zero when any job failed with an exception.
    Divergence is a result, not a failure. Multirun sweeps also get their table."""
    sweep_dirs = {o["sweep_dir"] for o in outcomes if o.get("sweep_dir")}
    for sweep_dir in sorted(sweep_dirs):
        _write_sweep_report(Path(sweep_dir))
    failed = [o for o in outcomes if o["status"] == "failed"]
    for o in failed:
        where = f" [{Path(o['run_dir']).name}]" if sweep_dirs else ""
        print(f"error{where}: {o['error']}", file=sys.stderr)
    if sweep_dirs:
        print(f"{len(outcomes) - len(failed)}/{len(outcomes)} jobs finished; sweep folder: {', '.join(sorted(sweep_dirs))}")
    if failed and all(o.get("kind") == "config" for o in failed):
        return 2
    return 1 if failed else 0


def _write_sweep_report(sweep_dir: Path) -> None:
    try:
        from trainlab.sweep.cli import write_sweep_report
    except ImportError:
        return
    try:
        path = write_sweep_report(sweep_dir)
        print(f"sweep table: {path}")
    except Exception as err:  # a table problem must not hide the sweep's own result
        print(f"warning: could not write the sweep table for {sweep_dir}: {err}", file=sys.stderr)


def resume_command(args: list[str]) -> int:
    """`trainlab resume RUN_DIR [overrides]`: the run's own overrides, plus resume=true, in its folder."""
    import yaml

    if not args or args[0].startswith("-"):
        raise ConfigError("RUN_DIR", args[0] if args else "", "a run folder to resume, e.g. outputs/runs/<run>")
    run_dir = Path(args[0])
    recorded = run_dir / ".hydra" / "overrides.yaml"
    if not recorded.is_file():
        raise ConfigError("RUN_DIR", str(run_dir), "a trainlab run folder (one holding .hydra/overrides.yaml)")
    if not (run_dir / "checkpoints" / "last.pt").is_file():
        raise ConfigError("RUN_DIR", str(run_dir), "a run folder with checkpoints/last.pt (nothing to resume from)")
    old = [o for o in (yaml.safe_load(recorded.read_text()) or []) if not o.startswith(("resume=", "hydra."))]
    new = args[1:]
    new_keys = {o.split("=", 1)[0].lstrip("+~") for o in new}
    kept = [o for o in old if o.split("=", 1)[0].lstrip("+~") not in new_keys]
    return train_command([*kept, *new, "resume=true", f"hydra.run.dir={run_dir.resolve()}"])


def ensemble_command(args: list[str]) -> int:
    from trainlab.engine.ensemble import ensemble_main

    return ensemble_main(args)


def table_command(args: list[str]) -> int:
    from trainlab.sweep.cli import table_main

    return table_main(args)


COMMANDS = {"train": train_command, "resume": resume_command, "table": table_command, "ensemble": ensemble_command}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"error: command={command!r} is not valid: choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    try:
        return COMMANDS[command](rest)
    except ConfigError as err:
        from trainlab.app import verbose

        if verbose():
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    sys.exit(main())
