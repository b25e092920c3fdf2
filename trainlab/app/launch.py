"""`trainlab train`: plan, claim the folder, let Hydra run the jobs, and judge the outcome.

    precheck.prepare  every job composed and validated; the run or sweep folder fixed (no torch)
    claim             the folder locked; start, continue or refuse decided (trainlab.app.run_folder)
    Hydra             composes and launches the jobs; each is a TrainJob call (trainlab.app.job)
    exit code         from the jobs' outcomes; a sweep's from its folder, which also holds the
                      jobs that ran in other processes and those kept from an earlier attempt
    figures           queued to a background drawer as each result is recorded; the command
                      returns without waiting for them (trainlab.engine.figures.FigureWorker)

Hydra is called with the arguments as a list (no sys.argv rewriting), and the outcomes come
back on the TrainJob object rather than through a module-level list.
"""
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from trainlab.app.compose import CONFIG_NAME, compose_job, conf_dir, register_resolvers
from trainlab.errors import ConfigError

if TYPE_CHECKING:
    from trainlab.engine.distributed import DistInfo


def train_command(args: list[str]) -> int:
    from trainlab.app.job import TrainJob, claim, several_processes
    from trainlab.app.precheck import prepare
    from trainlab.app.folder_lock import FolderLock, new_folders
    from trainlab.app.run_folder import refused_before_training, remove_new_folders, requeued
    from trainlab.app.run_record import task_overrides

    if several_processes() and max(int(os.environ.get(k) or 1) for k in ("WORLD_SIZE", "SLURM_STEP_NUM_TASKS")) > 1:
        from trainlab.engine import distributed  # torchrun or srun: one run folder for every rank, rank 0 writes

        args = rank_args(args, distributed.init())
    if {"--help", "-h"} & set(args):
        print(train_help([a for a in args if not a.startswith("-")]))
        return 0
    plan = prepare(args)
    if plan.info_only:
        return run_hydra(plan.args, TrainJob())
    from trainlab.engine.console import sweep_progress
    from trainlab.engine.figures import FigureWorker

    figures = FigureWorker()  # figures are drawn aside, after each result is recorded
    if plan.multirun or ((plan.config or {}).get("trainer") or {}).get("figures") != "never":
        figures.start("sweep" if plan.multirun else "run")  # its imports overlap the training
    if plan.multirun:
        job = TrainJob(figures=figures)
        with FolderLock.acquire(plan.sweep_dir, "hydra.sweep.dir"):
            try:
                with sweep_progress(plan.sweep_dir, plan.jobs):  # jobs done/total, failures, ETA
                    code = run_hydra(plan.args, job)
                code = max(code, after_jobs(job.outcomes, plan.sweep_dir, figures))
                if job.figures_left:
                    print(f"the jobs' own curves.png and diagnostics.png: `trainlab plot {plan.sweep_dir}` draws "
                          f"them (trainer.figures=always draws each as its job ends)")
                return code
            except KeyboardInterrupt:  # the jobs that finished still get their table
                write_sweep_report(plan.sweep_dir, figures)
                raise
            finally:
                figures.close()
    restart = f"SLURM_RESTART_COUNT={os.environ['SLURM_RESTART_COUNT']}" if requeued() else ""
    created, lock = new_folders(plan.run_dir), None
    try:
        decision, lock = claim(plan.run_dir, plan.resume, plan.config, restart, "hydra.run.dir",
                               task_overrides(plan.args))
        job = TrainJob(decision, figures=figures)
        code = run_hydra(plan.args, job)
        if created and lock is not None and refused_before_training(job.outcomes, plan.run_dir):
            remove_new_folders(created)  # still locked: no other process can be writing there
    except (KeyboardInterrupt, ConfigError):  # a signal or a refusal while starting up: a folder resume can start from scratch, or none
        if created and not (plan.run_dir / "summary.json").exists():  # this process made it, nothing ran
            remove_new_folders(created)
        raise
    finally:
        if lock is not None:
            lock.release()
        figures.close()
    return code or after_jobs(job.outcomes)


def train_help(overrides: list[str]) -> str:
    """`trainlab train --help`, as Hydra's help would render conf/hydra/help/trainlab.yaml, but with the
    groups listed from the config folders: Hydra's own listing deep-copies its config repository once
    per group (about 1 s here), several times what the rest of the answer costs."""
    import yaml
    from omegaconf import OmegaConf

    from trainlab.app.compose import compose_job, group_options, groups

    texts = yaml.safe_load((conf_dir() / "hydra" / "help" / "trainlab.yaml").read_text())
    listing = "\n".join(f"{g}: {', '.join(group_options(g))}" for g in groups())
    config = OmegaConf.to_yaml(compose_job(overrides))
    body = texts["template"].replace("$APP_CONFIG_GROUPS", listing).replace("$CONFIG", config)
    return body.replace("${hydra.help.header}", texts["header"]).replace("${hydra.help.footer}", texts["footer"])


def run_hydra(args: list[str], task) -> int:
    """Hydra's command line on `args`, with `task` as the task function; its exit code."""
    from hydra._internal.utils import _run_hydra, get_args_parser

    register_resolvers()
    parser = get_args_parser()
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        _run_hydra(args=parser.parse_args(args), args_parser=parser, task_function=task,
                   config_path=str(conf_dir()), config_name=CONFIG_NAME)
    except SystemExit as exit_:
        return 0 if exit_.code in (0, None) else exit_.code if isinstance(exit_.code, int) else 1
    finally:
        # Hydra leaves the job's train.log handler on the root logger: in a process that goes on (a
        # notebook, a test session, a second command) later lines would land in that run's log, or
        # fail on a folder that a refused run removed
        for handler in root.handlers[:]:
            if isinstance(handler, logging.FileHandler) and handler not in before:
                root.removeHandler(handler)
                handler.close()
    return 0


def after_jobs(outcomes: list[dict], sweep_dir: Path | None = None, figures=None) -> int:
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
            write_sweep_report(sweep_dir, figures)
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


def write_sweep_report(sweep_dir: Path, figures=None) -> None:
    """The sweep's table now; its curves.png by `figures` (the background drawer) when given."""
    try:
        from trainlab.sweep.cli import write_sweep_report as write
    except ImportError:
        return
    try:
        path = write(sweep_dir, figure=figures is None)
        if figures is not None:
            figures.submit_sweep(sweep_dir)
        print(path.read_text().rstrip())
        print(f"sweep table: {path}")
    except Exception as err:  # a table problem must not hide the sweep's own result
        print(f"warning: could not write the sweep table for {sweep_dir}: {err}", file=sys.stderr)


def resume_command(args: list[str]) -> int:
    """`trainlab resume RUN_DIR [overrides]`: the run's own overrides, plus resume=true, in its folder.
    A run stopped or failed before its first checkpoint starts again from scratch there."""
    from trainlab.app.run_folder import stopped_before_checkpoint
    from trainlab.app.run_record import recorded_overrides
    from trainlab.sweep.resume import quote

    if len(args) > 1 and not args[1].startswith("-") and "=" not in args[1]:
        raise ConfigError("overrides", args[1], "key=value overrides after the one RUN_DIR (got a second folder?)")
    sweep = [a for a in args[1:] if a in ("-m", "--multirun")]
    if sweep:
        raise ConfigError("resume", sweep[0], "key=value overrides: resume continues one run in its folder "
                          "(`trainlab resume-sweep SWEEP_DIR` continues a sweep)")
    moved = [a for a in args[1:] if a.split("=", 1)[0].lstrip("+~") == "hydra.run.dir"]
    if moved:
        raise ConfigError("hydra.run.dir", moved[0].split("=", 1)[-1], "not set on resume: the run continues in "
                          "RUN_DIR, its own folder")
    run_dir = Path(args[0])
    recorded = recorded_overrides(run_dir)  # the run's own record, or Hydra's .hydra/overrides.yaml
    if recorded is None:
        raise ConfigError("RUN_DIR", str(run_dir), "a trainlab run folder (one holding .hydra/overrides.yaml)")
    if not (run_dir / "checkpoints" / "last.pt").is_file() and not stopped_before_checkpoint(run_dir):
        raise ConfigError("RUN_DIR", str(run_dir), "a run folder with checkpoints/last.pt (nothing to resume from)")
    old = [o for o in recorded if not o.startswith(("resume=", "hydra."))]
    new = args[1:]
    new_keys = {o.split("=", 1)[0].lstrip("+~") for o in new}
    kept = [o for o in old if o.split("=", 1)[0].lstrip("+~") not in new_keys]
    # quoted: a sweep job's folder name holds `=` and `,` (0_activation=relu,seed=0), which Hydra would parse
    return train_command([*kept, *new, "resume=true", f"hydra.run.dir={quote(str(run_dir.resolve()))}"])


def resume_sweep_command(args: list[str]) -> int:
    """`trainlab resume-sweep SWEEP_DIR [overrides]`: the sweep again in its folder; jobs with a
    result are kept, the others run (failed and interrupted ones from their last checkpoint)."""
    from trainlab.sweep.resume import resume_sweep_args

    return train_command(resume_sweep_args(Path(args[0]), args[1:]))


def rank_args(args: list[str], info: "DistInfo") -> list[str]:
    """`trainlab train` arguments for this rank of a torchrun launch: one run folder for all.

    Rank 0 resolves the run folder (its timestamp would differ per process) and
    broadcasts it; the other ranks write neither Hydra's `.hydra/` nor a log file.
    """
    from trainlab.engine import distributed

    if "-m" in args or "--multirun" in args:
        raise ConfigError("-m", "multirun", "a single run under torchrun (launch a sweep of torchrun jobs instead)")
    run_dir = None
    if info.is_main:
        run_dir = next((a.split("=", 1)[1] for a in args if a.startswith("hydra.run.dir=")), None) or _resolve_run_dir(args)
    run_dir = distributed.broadcast_object(run_dir)
    extra = [f"hydra.run.dir={run_dir}"]
    if not info.is_main:
        extra += ["hydra.output_subdir=null", "hydra/job_logging=disabled"]
    return [a for a in args if not a.startswith("hydra.run.dir=")] + extra


def _resolve_run_dir(args: list[str]) -> str:
    from omegaconf import OmegaConf

    cfg = compose_job([a for a in args if not a.startswith("-")], with_hydra=True)
    return str(OmegaConf.select(cfg, "hydra.run.dir"))
