"""The Hydra application behind `trainlab train`.

Hydra gives us config groups, overrides, `-m` sweeps, `--help`, `--cfg job`
and a folder per run; this module only turns one composed config into one
run and records the outcome for the CLI (which decides the exit code).
"""
import logging
import os
import re
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from trainlab.compose import conf_dir
from trainlab.errors import ConfigError

log = logging.getLogger("trainlab")

# Filled in by the jobs of this process; read by the CLI after Hydra returns.
OUTCOMES: list[dict] = []


def _safe(text: str) -> str:
    """A folder-name-safe, bounded version of Hydra's override_dirname."""
    text = re.sub(r"[^A-Za-z0-9=,._+\-\[\]]", "-", str(text))
    return text[:120] if text else "job"


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("trainlab_safe", _safe, replace=True)
    OmegaConf.register_new_resolver("trainlab_suffix", lambda name: f"_{_safe(name)}" if name else "", replace=True)


register_resolvers()


def verbose() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1" or os.environ.get("TRAINLAB_VERBOSE") == "1"


@hydra.main(config_path=str(conf_dir()), config_name="train", version_base=None)
def train_app(cfg: DictConfig) -> float | None:
    from trainlab.engine import distributed
    from trainlab.engine.run import run_training
    from trainlab.run_guard import holds_run, requeued

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    outcome = {"run_dir": str(run_dir), "status": "failed", "error": None,
               "sweep_dir": str(Path(hc.sweep.dir).resolve()) if multirun else None}
    OUTCOMES.append(outcome)
    try:
        # The tasks of one SLURM/submitit job (hydra.launcher.tasks_per_node > 1) form one process group
        # here; under torchrun the CLI has joined it already.
        info = distributed.init(cfg.trainer.device)
        if not info.is_main:
            _leave_the_log_to_rank_zero()
        if multirun:
            _prepare_sweep_job(cfg, hc, run_dir, info)
        elif requeued() and not cfg.resume and holds_run(run_dir):  # a single run that SLURM started again
            _continue_or_restart(cfg, run_dir, info, f"SLURM_RESTART_COUNT={os.environ['SLURM_RESTART_COUNT']}")
        summary = run_training(cfg, run_dir, list(hc.overrides.task))
    except ConfigError as err:
        # Bad input found once the data or model is built: recorded in the run folder, reported by the CLI.
        outcome.update(error=str(err), kind="config")
        if multirun:
            log.error(f"job {hc.job.num} not started: {err}")
        return None
    except Exception as err:
        if verbose():
            raise
        outcome.update(error=f"{type(err).__name__}: {err} (traceback in {run_dir / 'train.log'})", kind="exception")
        log.error(f"failed: {type(err).__name__}: {err}")
        return None
    outcome["status"] = summary["status"]
    best = summary.get("best") or {}
    return best.get("val_acc")


def _prepare_sweep_job(cfg: DictConfig, hc, run_dir: Path, info) -> None:
    """Settings only a sweep job has: its GPU, and how it restarts in a resumed sweep or a requeued job."""
    import torch

    if info.world == 1:  # the ranks of a multi-task job take their GPU by local rank instead
        gpus = torch.cuda.device_count() if cfg.trainer.device == "auto" else 0
        cfg.trainer.device = device_for_job(cfg.trainer.device, hc.job.num, gpus)
    # A job that may find an earlier attempt in its folder continues from its last checkpoint, or starts
    # over without that attempt's files:
    # - in a resumed sweep: the sweeper launches only jobs without a result (trainlab.sweep.resume);
    # - in any job submitit runs (SLURM, or its local executor): its folder holds a run only when the job
    #   was started again (requeued after preemption or a time limit), because a new sweep is refused in
    #   a folder that holds one (trainlab.precheck). Looking at the folder rather than SLURM_RESTART_COUNT
    #   also covers submitit's local executor and a requeue that came before any checkpoint.
    if OmegaConf.select(hc, "sweeper.resume", default=False):
        _continue_or_restart(cfg, run_dir, info, f"job {hc.job.num} of a resumed sweep")
    elif os.environ.get("SUBMITIT_EXECUTOR"):
        _continue_or_restart(cfg, run_dir, info, f"job {hc.job.num} started again by submitit (requeued)")


def _continue_or_restart(cfg: DictConfig, run_dir: Path, info, why: str) -> None:
    from trainlab.engine import distributed

    # rank 0 decides for all: the others must not look while it clears files
    resume = distributed.broadcast_object((run_dir / "checkpoints" / "last.pt").is_file())
    if resume:
        cfg.resume = True
        log.info(f"resuming from {run_dir / 'checkpoints' / 'last.pt'} ({why})")
    elif info.is_main:
        from trainlab.sweep.resume import clear_results

        clear_results(run_dir)
    distributed.barrier()


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
