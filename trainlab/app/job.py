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
from trainlab.app.choices import choices_block, print_config_tree
from trainlab.app.folder_lock import FolderLock
from trainlab.app.run_folder import Decision, decide, requeued

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
        self.figures_left = False  # a job's figures were left to `trainlab plot` (trainer.figures)

    def __getstate__(self):
        # A launcher that runs jobs in other processes (joblib, submitit) pickles the task: there
        # each job draws its figures in line (the command's drawer does not reach that process).
        return self.__dict__ | {"figures": None, "claimed": None}

    def __call__(self, cfg: DictConfig, work=None):
        """Hydra's call for one job: the job trained (its best val_acc, the sweepers' objective). With
        `work(cfg, hc, run_dir, multirun)` instead (a vectorized group's replicates are set up so),
        that, its result returned. Either way the outcome is recorded; None when it failed (the error
        is in the outcome)."""
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        run_dir = Path(hc.runtime.output_dir)
        multirun = hc.mode == RunMode.MULTIRUN
        outcome = {"run_dir": str(run_dir), "status": "failed", "error": None,
                   "sweep_dir": str(Path(hc.sweep.dir).resolve()) if multirun else None}
        self.outcomes.append(outcome)
        try:
            if work is not None:
                return work(cfg, hc, run_dir, multirun)
            summary = self._run(cfg, hc, run_dir, multirun)
            outcome["status"] = summary["status"]
            return (summary.get("best") or {}).get("val_acc")
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
        from trainlab.engine.training import run_training

        decision, lock = self.start(cfg, hc, run_dir, multirun)
        discard = not multirun and not OmegaConf.select(cfg, "trainer.keep_folder", default=True)
        try:
            spec, *rest = job_parts(cfg, decision, None if discard else self.drawer(cfg, multirun))
            summary = run_training(cfg, spec, run_dir, list(hc.overrides.task), *rest)
        finally:
            if lock is not None:
                lock.release()
        if discard and summary["status"] == "completed":  # trainer.keep_folder=false (trainer=fast_dev_run)
            import shutil

            shutil.rmtree(run_dir, ignore_errors=True)
            log.info(f"{run_dir} removed (trainer.keep_folder=false); test acc "
                     f"{100 * (summary.get('test') or {}).get('acc', float('nan')):.2f}%")
        return summary

    def drawer(self, cfg: DictConfig, multirun: bool):
        """What draws a finished run's figures (trainer.figures): the command's background worker, in line
        (a job in another process), or nobody. A sweep's jobs leave theirs to `trainlab plot` by default:
        drawing them costs more CPU than a small job's training; the sweep's own figure overlays them."""
        from trainlab.engine.figures import draw_run_figures

        when = OmegaConf.select(cfg, "trainer.figures", default="auto")
        if when == "never" or (when == "auto" and multirun and not OmegaConf.select(cfg, "logger")):
            self.figures_left = True
            return None
        return draw_run_figures if self.figures is None else self.figures.submit

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
            # parallel jobs: each its share of the cores (else `auto` reaches the run, which weighs its step)
            if (jobs := launcher_jobs(OmegaConf.select(hc, "launcher"))) > 1:
                cfg.trainer.threads = resolve_threads(cfg.trainer.threads, jobs)
            if info.is_main:
                log.info(choices_block(dict(hc.runtime.choices), list(hc.overrides.task)))
                if OmegaConf.select(cfg, "trainer.print_config", default=False):
                    print_config_tree(cfg)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return decision, lock


def run_job(cfg: DictConfig, run_dir: Path, overrides: list[str], decision: Decision | None = None,
            draw_figures=None) -> dict:
    """One job trained in `run_dir` through the training core, with the shell's hooks; the folder's
    decision is made here when the caller made none (tests, scripts: they hold no lock)."""
    from trainlab.engine.training import run_training

    if decision is None:
        decision = decide(Path(run_dir), bool(cfg.get("resume")), OmegaConf.to_container(cfg, resolve=True))
    spec, *rest = job_parts(cfg, decision, draw_figures)
    return run_training(cfg, spec, run_dir, overrides, *rest)


def job_parts(cfg: DictConfig, decision: Decision, draw_figures) -> tuple:
    """What the shell hands the core for one job: its validated spec, last.pt's content (or None), the
    figure drawer, the hooks."""
    from trainlab.config import validate

    from trainlab.app.hooks import run_hooks
    from trainlab.engine import distributed

    if draw_figures is not None and OmegaConf.select(cfg, "logger"):  # in line: the trackers take them at the end
        from trainlab.engine.figures import draw_run_figures

        draw_figures = draw_run_figures
    ranks = distributed.current()
    hooks = run_hooks(cfg, ranks.is_main, ranks.world == 1)
    state, decision.resume_state = decision.resume_state, None  # the run lets it go once restored
    return validate(cfg), state, draw_figures, hooks


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


def _restart_reason(hc, multirun: bool) -> str:
    """Why a job may find an earlier attempt of itself in its folder ("" when it may not).

    - in a resumed sweep: the sweeper launches only jobs without a result (trainlab.sweep.resume);
    - in any job submitit runs (SLURM, or its local executor): its folder holds a run only when the job
      was started again (requeued after preemption or a time limit), because a new sweep is refused in
      a folder that holds one (trainlab.app.precheck). Looking at the folder rather than SLURM_RESTART_COUNT
      also covers submitit's local executor and a requeue that came before any checkpoint;
    - a single run that SLURM started again.
    """
    if multirun and OmegaConf.select(hc, "sweeper.resume", default=False):
        return f"job {hc.job.num} of a resumed sweep"
    if multirun and os.environ.get("SUBMITIT_EXECUTOR"):
        count = os.environ.get("SLURM_RESTART_COUNT")  # SLURM's own count of this job's restarts
        return f"job {hc.job.num} started again by submitit (requeued)" + (
            f", SLURM_RESTART_COUNT={count}" if count else "")
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
    """Lock `run_dir` and decide whether the run starts or continues there (trainlab.app.run_folder.decide).
    With several ranks, rank 0 locks and decides for all, and each rank then reads last.pt for its own
    RNG streams; a refusal reaches every rank, so none waits for the others forever. `record`: a single
    run's overrides, kept in its folder before Hydra writes anything (trainlab.app.run_record); a refused
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
    from trainlab.app.run_record import write_record

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
