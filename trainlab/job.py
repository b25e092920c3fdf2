"""The Hydra task function behind `trainlab train`: one composed config becomes one run.

Hydra gives config groups, overrides, `-m` sweeps and a folder per job; TrainJob turns a
job's config into a run in that folder and keeps its outcome. A launcher may run it in
another process (joblib, submitit): the outcome kept here is then lost with that process,
and the CLI reads the sweep's result from the folder instead.
"""
import logging
import os
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from trainlab.errors import ConfigError, DiskFull
from trainlab.run_folder import Decision, FolderLock, decide, requeued

log = logging.getLogger("trainlab")


def verbose() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1" or os.environ.get("TRAINLAB_VERBOSE") == "1"


class TrainJob:
    """Called by Hydra once per job. `claimed` is the single run's folder decision, made by the
    CLI before Hydra started (its lock is held by this same process)."""

    def __init__(self, claimed: Decision | None = None, figures=None):
        self.claimed = claimed
        self.outcomes: list[dict] = []
        self.figures = figures  # the command's trainlab.engine.figures.FigureWorker: figures drawn aside

    def __getstate__(self):
        # A launcher that runs jobs in other processes (joblib, submitit) pickles the task: there
        # each job draws its figures in line (the command's drawer does not reach that process).
        return self.__dict__ | {"figures": None, "claimed": None}

    def __call__(self, cfg: DictConfig) -> float | None:
        summary = self.guarded(cfg, self._run)
        if summary is None:
            return None
        self.outcomes[-1]["status"] = summary["status"]
        return (summary.get("best") or {}).get("val_acc")

    def guarded(self, cfg: DictConfig, work):
        """`work(cfg, hc, run_dir, multirun)` for the current Hydra job, its outcome recorded; None when it
        failed (the error is in the outcome). A vectorized group's replicates are set up through here."""
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        run_dir = Path(hc.runtime.output_dir)
        multirun = hc.mode == RunMode.MULTIRUN
        outcome = {"run_dir": str(run_dir), "status": "failed", "error": None,
                   "sweep_dir": str(Path(hc.sweep.dir).resolve()) if multirun else None}
        self.outcomes.append(outcome)
        try:
            return work(cfg, hc, run_dir, multirun)
        except ConfigError as err:
            # Bad input found once the data or model is built: recorded in the run folder, reported by the CLI.
            outcome.update(error=str(err), kind="config")
            if multirun:
                log.error(f"job {hc.job.num} not started: {err}")
            return None
        except DiskFull as err:  # no traceback to read: the message says all (last.pt stays the previous one)
            outcome.update(error=f"{err}; free space, then `trainlab resume` continues from the last checkpoint",
                           kind="disk")
            log.error(f"failed: {outcome['error']}")
            return None
        except Exception as err:
            if verbose():
                raise
            outcome.update(error=f"{type(err).__name__}: {err} (traceback in {run_dir / 'train.log'})", kind="exception")
            log.error(f"failed: {type(err).__name__}: {err}")
            return None

    def _run(self, cfg: DictConfig, hc, run_dir: Path, multirun: bool) -> dict:
        from trainlab.engine.run import run_training

        decision, lock = self.start(cfg, hc, run_dir, multirun)
        try:
            return run_training(cfg, run_dir, list(hc.overrides.task), decision=decision, draw_figures=self.drawer())
        finally:
            if lock is not None:
                lock.release()

    def drawer(self):
        """What draws a finished run's figures: the sweep's background worker, or None (in line)."""
        return self.figures.submit if self.figures is not None else None

    def start(self, cfg: DictConfig, hc, run_dir: Path, multirun: bool) -> tuple[Decision, "FolderLock | None"]:
        """Before a job's run: its device and threads, the folder claimed (start or continue), the
        choices logged. Returns the folder decision and the lock the caller releases."""
        from trainlab.engine import distributed

        # The tasks of one SLURM/submitit job (hydra.launcher.tasks_per_node > 1) form one process group
        # here; under torchrun the CLI has joined it already.
        info = distributed.init(cfg.trainer.device)
        if not info.is_main:
            _leave_the_log_to_rank_zero()
        if multirun and info.world == 1:  # the ranks of a multi-task job take their GPU by local rank instead
            import torch

            gpus = torch.cuda.device_count() if cfg.trainer.device == "auto" else 0
            cfg.trainer.device = device_for_job(cfg.trainer.device, hc.job.num, gpus)
        lock = None
        if self.claimed is not None:
            decision = self.claimed
        else:
            decision, lock = claim(run_dir, bool(cfg.resume), OmegaConf.to_container(cfg, resolve=True),
                                   _restart_reason(hc, multirun), "hydra.sweep.dir" if multirun else "hydra.run.dir")
        try:
            if decision.resume_state is not None:
                cfg.resume = True
            from trainlab.engine.threads import launcher_jobs, resolve_threads

            # this process's share of the cores, with the launcher's parallel jobs counted
            cfg.trainer.threads = resolve_threads(cfg.trainer.threads, launcher_jobs(OmegaConf.select(hc, "launcher")))
            if info.is_main:
                log.info(choices_block(dict(hc.runtime.choices), list(hc.overrides.task)))
                if OmegaConf.select(cfg, "trainer.print_config", default=False):
                    print_config_tree(cfg)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return decision, lock


class ReleaseJobConfig(Callback):
    """What made an in-process sweep grow with every job (conf/train.yaml, hydra.callbacks):

    - Hydra keeps a JobReturn per job until the sweep ends, each holding the job's whole composed
      config twice (`cfg`, `hydra_cfg`): about 1,300 Python objects per job. Nothing reads them once
      the job has ended (outcomes are read from the run folders), so they are let go.
    - glibc keeps the heap pages a finished job freed (its data, model, optimizer state) and the next
      job's allocations land on a fragmented heap: the resident size drifts up from job to job.
      malloc_trim hands them back (a few ms).
    tests/test_sweeps.py bounds both."""

    def on_job_end(self, config, job_return, **kwargs) -> None:
        # what a sweeper still needs from a finished job: its folder (trainlab's optuna sweeper)
        hydra_cfg = job_return.hydra_cfg
        job_return.run_dir = str(hydra_cfg.hydra.runtime.output_dir) if hydra_cfg is not None else None
        job_return.cfg = job_return.hydra_cfg = None
        trim_heap()


def trim_heap() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        pass


def default_choices() -> dict[str, str]:
    """group -> option as conf/train.yaml's defaults list picks it."""
    import yaml

    from trainlab.compose import CONFIG_NAME, conf_dir

    out = {}
    for item in yaml.safe_load((conf_dir() / f"{CONFIG_NAME}.yaml").read_text()).get("defaults", []):
        if isinstance(item, dict):
            for key, value in item.items():
                if not key.startswith(("override ", "optional ", "hydra")):
                    out[key] = str(value)
    return out


def choices_block(choices: dict, overrides: list[str]) -> str:
    """The run's choices in one compact block: the group options that are not the defaults, then
    the key=value overrides (the full config: trainer.print_config=true, or --cfg job)."""
    defaults = default_choices()
    picked = [f"{g}={choices[g]}" for g in defaults if g in choices and str(choices[g]) != defaults[g]]
    keys = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in choices and not o.startswith("hydra")]
    same = " ".join(f"{g}={choices[g]}" for g in defaults if g in choices and str(choices[g]) == defaults[g])
    lines = ["choices:", f"  options:   {' '.join(picked) or '(all default)'}",
             f"  overrides: {' '.join(keys) or '(none)'}", f"  defaults:  {same}"]
    return "\n".join(lines)


def print_config_tree(cfg: DictConfig) -> None:
    """The whole composed config as a rich tree (trainer.print_config=true)."""
    from rich.console import Console
    from rich.tree import Tree

    def add(branch, node):
        for key, value in node.items():
            if isinstance(value, dict):
                add(branch.add(f"[bold]{key}[/bold]"), value)
            else:
                branch.add(f"{key}: {value!r}" if isinstance(value, str) else f"{key}: {value}")

    tree = Tree("[bold]config[/bold]")
    add(tree, OmegaConf.to_container(cfg, resolve=True))
    Console().print(tree)


def _restart_reason(hc, multirun: bool) -> str:
    """Why a job may find an earlier attempt of itself in its folder ("" when it may not).

    - in a resumed sweep: the sweeper launches only jobs without a result (trainlab.sweep.resume);
    - in any job submitit runs (SLURM, or its local executor): its folder holds a run only when the job
      was started again (requeued after preemption or a time limit), because a new sweep is refused in
      a folder that holds one (trainlab.precheck). Looking at the folder rather than SLURM_RESTART_COUNT
      also covers submitit's local executor and a requeue that came before any checkpoint;
    - a single run that SLURM started again.
    """
    if multirun and OmegaConf.select(hc, "sweeper.resume", default=False):
        return f"job {hc.job.num} of a resumed sweep"
    if multirun and os.environ.get("SUBMITIT_EXECUTOR"):
        return f"job {hc.job.num} started again by submitit (requeued)"
    if not multirun and requeued():
        return f"SLURM_RESTART_COUNT={os.environ['SLURM_RESTART_COUNT']}"
    return ""


def several_processes() -> bool:
    """Launched as one of several ranks (torchrun, srun, a multi-task submitit job), told by the
    environment alone: a single process decides without importing torch."""
    env = os.environ
    return int(env.get("WORLD_SIZE") or 1) > 1 or int(env.get("SLURM_NTASKS") or 1) > 1 or bool(env.get("SUBMITIT_EXECUTOR"))


def claim(run_dir: Path, resume: bool, config: dict, restartable: str, key: str,
          record: list[str] | None = None) -> tuple[Decision, "FolderLock | None"]:
    """Lock `run_dir` and decide whether the run starts or continues there (trainlab.run_folder.decide).
    With several ranks, rank 0 locks and decides for all, and each rank then reads last.pt for its own
    RNG streams; a refusal reaches every rank, so none waits for the others forever. `record`: a single
    run's overrides, kept in its folder before Hydra writes anything (trainlab.run_record); a refused
    claim leaves the folder as it found it."""
    ranks = None
    if several_processes():
        from trainlab.engine import distributed

        ranks = distributed.current()
    lock, decision, verdict, refusal = None, None, None, None
    if ranks is None or ranks.is_main:
        try:
            lock = FolderLock.acquire(run_dir, key, record)
            if resume and lock.created:  # made just now (holding only this claim's record): nothing to resume
                raise ConfigError("resume", "true", f"a run folder to continue: {run_dir} did not exist "
                                  "(`trainlab resume RUN_DIR` continues a run)")
            decision = decide(run_dir, resume, config, restartable)
            if record is not None:
                _keep_record(run_dir, record, key)
            verdict = ("resume" if decision.resume_state is not None else "start",)
        except ConfigError as err:
            if lock is not None:
                lock.release(refused=True)
            verdict, refusal = ("refused", err.key, err.value, err.valid), err
    if ranks is not None and ranks.world > 1:
        from trainlab.engine import distributed

        verdict = distributed.broadcast_object(verdict)
    if verdict[0] == "refused":
        raise refusal or ConfigError(*verdict[1:])  # the error itself where it was found (its own wording)
    if decision is None:  # a rank > 0
        from trainlab.engine import checkpoint as ckpt

        decision = Decision(ckpt.load(Path(run_dir) / "checkpoints" / "last.pt") if verdict[0] == "resume" else None)
    return decision, lock


def _keep_record(run_dir: Path, record: list[str], key: str) -> None:
    from trainlab.run_record import write_record

    try:
        write_record(run_dir, record)
    except OSError as err:
        raise ConfigError(key, str(run_dir), f"a folder with room to write in ({err.strerror})") from None


def _leave_the_log_to_rank_zero() -> None:
    """Hydra set up logging in every task of a multi-task job: train.log is rank 0's alone.
    (Each task also writes the run's .hydra/*.yaml: the same bytes, so harmless.)"""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logging.FileHandler)]:
        root.removeHandler(handler)
        handler.close()


def device_for_job(device: str, job_num: int | None, gpu_count: int) -> str:
    """The device of sweep job `job_num`: with trainer.device=auto and several visible GPUs,
    job n goes to cuda:(n mod count), so parallel jobs (joblib) spread over the GPUs
    instead of all landing on cuda:0. Anything explicit is kept."""
    if device != "auto" or gpu_count < 2 or job_num is None:
        return device
    return f"cuda:{job_num % gpu_count}"
