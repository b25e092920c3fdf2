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
  resume-sweep SWEEP_DIR [overrides]   run a sweep's failed, interrupted and missing jobs again, keeping the rest
  table SWEEP_DIR ...      the ablation table of a sweep (mean ± std over seeds/folds)
  ensemble PATH ...        average the predictions of trained runs (or a sweep's jobs) on the test set
  check [overrides]        sanity checks: initial loss, regularization raises it, overfit 20 examples (exit 1 on a failure)
  inspect [overrides]      per-layer activation/gradient statistics at init (--gaussian, --batch N)
  gradcheck [overrides]    backprop against finite differences, per parameter tensor (exit 1 on a wrong gradient)
  lr-find [overrides]      learning-rate range test with the configured optimizer (--steps N)
"""


def train_command(args: list[str]) -> int:
    from trainlab import app
    from trainlab.precheck import prepare
    from trainlab.engine import distributed
    from trainlab.run_guard import guard_existing_run

    info = distributed.init()  # several processes under torchrun / srun: one run folder, rank 0 writes
    if info.world > 1:
        args = distributed.rank_args(args, info)
    guard_existing_run(args)  # before Hydra writes anything into an existing run folder
    prepared = prepare(args)  # every job validated; a multirun's folder fixed before it starts
    app.OUTCOMES.clear()
    sys.argv = ["trainlab train", *prepared.args]
    code = 0
    try:
        app.train_app()
    except SystemExit as exit_:
        code = 0 if exit_.code in (0, None) else _exit_code(exit_.code)
    except KeyboardInterrupt:
        if prepared.sweep_dir is not None:  # the jobs that finished still get their table
            _write_sweep_report(prepared.sweep_dir)
        raise
    if prepared.sweep_dir is None and code:
        return code
    return max(code, _after_jobs(app.OUTCOMES, prepared.sweep_dir))


def _exit_code(code) -> int:
    return code if isinstance(code, int) else 1


def _after_jobs(outcomes: list[dict], sweep_dir: Path | None = None) -> int:
    """Exit code of a train command: non-zero when any job failed with an exception
    (2 when every failure is bad input). Divergence is a result, not a failure.

    A multirun is judged by its folder, which also holds the jobs that ran in other
    processes (joblib, submitit) and, when resuming, the jobs kept from before; the
    outcomes recorded in this process replace the folder's where both exist."""
    if sweep_dir is not None:
        from trainlab.sweep.resume import outcomes as folder_outcomes

        here = {str(Path(o["run_dir"]).resolve()): o for o in outcomes}
        outcomes = [o | {k: v for k, v in here.get(str(Path(o["run_dir"]).resolve()), {}).items() if v is not None}
                    for o in folder_outcomes(sweep_dir)]
        if outcomes:
            _write_sweep_report(sweep_dir)
    failed = [o for o in outcomes if o["status"] == "failed"]
    for o in failed:
        where = f" [{Path(o['run_dir']).name}]" if sweep_dir is not None else ""
        print(f"error{where}: {_error_text(o)}", file=sys.stderr)
    if sweep_dir is not None:
        print(f"{len(outcomes) - len(failed)}/{len(outcomes)} jobs finished; sweep folder: {sweep_dir}")
    signalled = _stop_signal(outcomes)
    if signalled:  # the conventional 128 + signal number (130 for SIGINT, 143 for SIGTERM)
        return 128 + signalled
    if failed and all(o.get("kind") == "config" for o in failed):
        return 2
    return 1 if failed else 0


def _stop_signal(outcomes: list[dict]) -> int | None:
    """The signal that stopped a run (SIGINT/SIGTERM), read from its summary.json."""
    import json
    import signal

    for o in outcomes:
        if o.get("status") != "interrupted":
            continue
        try:
            name = json.loads((Path(o["run_dir"]) / "summary.json").read_text()).get("signal")
        except (OSError, ValueError):
            continue
        if name:
            return int(signal.Signals[name])
    return None


def _error_text(outcome: dict) -> str:
    error = str(outcome.get("error") or "failed")
    if error.startswith("ConfigError: "):  # read back from a summary.json: the one-line message is enough
        return error.removeprefix("ConfigError: ")
    if "traceback in" not in error and outcome.get("kind") == "exception":
        return f"{error} (traceback in {Path(outcome['run_dir']) / 'train.log'})"
    return error


def _write_sweep_report(sweep_dir: Path) -> None:
    try:
        from trainlab.sweep.cli import write_sweep_report
    except ImportError:
        return
    try:
        path = write_sweep_report(sweep_dir)
        print(path.read_text().rstrip())
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


def resume_sweep_command(args: list[str]) -> int:
    """`trainlab resume-sweep SWEEP_DIR [overrides]`: the sweep again in its folder; jobs with a
    result are kept, the others run (failed and interrupted ones from their last checkpoint)."""
    from trainlab.sweep.resume import resume_sweep_args

    if not args or args[0].startswith("-"):
        raise ConfigError("SWEEP_DIR", args[0] if args else "", "a sweep folder to resume, e.g. outputs/sweeps/<sweep>")
    return train_command(resume_sweep_args(Path(args[0]), args[1:]))


def _lazy(module: str, function: str):
    """A command imported on first use, so `trainlab train` does not load every other command."""
    def command(args: list[str]) -> int:
        import importlib

        return getattr(importlib.import_module(module), function)(args)

    return command


COMMANDS = {"train": train_command, "resume": resume_command, "resume-sweep": resume_sweep_command,
            "table": _lazy("trainlab.sweep.cli", "table_main"),
            "ensemble": _lazy("trainlab.engine.ensemble", "ensemble_main"),
            "check": _lazy("trainlab.diagnose.check", "check_command"),
            "inspect": _lazy("trainlab.diagnose.commands", "inspect_command"),
            "gradcheck": _lazy("trainlab.diagnose.commands", "gradcheck_command"),
            "lr-find": _lazy("trainlab.diagnose.commands", "lr_find_command")}


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
