"""The hooks the command shell attaches to every run (trainlab.engine.hooks): trackers, the Optuna
trial reporter, live diagnostics and the curve diagnosis. The training core imports none of them;
what a run does beyond training is decided here, in one place.
"""
from __future__ import annotations

import logging
from pathlib import Path

from trainlab.engine.hooks import Hook, Hooks
from trainlab.engine.run import Run

log = logging.getLogger("trainlab")


class LiveDiagnosticsHook(Hook):
    """trainer.diagnostics: per-layer statistics sampled in the hot loop, written with each row."""

    def on_start(self, run: Run) -> None:
        from trainlab.diagnose.live import LiveDiagnostics

        trainer = run.trainer
        run.loop.diag = LiveDiagnostics(run.c.model, trainer.diagnostics, trainer.diagnostics_every)
        run.loop.diag.write_labels(run.run_dir / "diagnostics_layers.json")  # diagnostics.png's layer names
        if run.restored_diagnostics is not None:
            run.loop.diag.load_state_dict(run.restored_diagnostics)


class TrackersHook(Hook):
    """logger=...: every metrics row to each tracker, the end of the run with its summary and figures."""

    def __init__(self):
        self.trackers = None

    def on_start(self, run: Run) -> None:
        from trainlab.engine.trackers import open_trackers

        self.trackers = open_trackers(run)

    def on_eval(self, run: Run, row: dict, initial: bool) -> None:
        if run.main:
            self.trackers.log(row, run.step_losses)

    def on_end(self, run: Run, status: str, summary: dict | None, files: list[Path]) -> None:
        if self.trackers is not None:
            self.trackers.close(status, summary, files)


class TrialReporterHook(Hook):
    """A job of an Optuna sweep that prunes: each evaluation reported to its trial, which may stop it."""

    def __init__(self, reporter):
        self.reporter = reporter

    def before_training(self, run: Run) -> str | None:
        return "pruned" if not self.reporter.lead and self.reporter.lead_pruned() else None

    def on_eval(self, run: Run, row: dict, initial: bool) -> str | None:
        return "pruned" if not initial and self.reporter.prune(row) else None


class ProfilerHook(Hook):
    """trainer.profile: torch.profiler over the first epoch's steps of this session; the trace in
    profile/ (the format TensorBoard's profiler plugin and chrome://tracing open), the operators that
    took the most time in train.log. One profiler per process: a group's replicates share the first's."""

    active = False

    def __init__(self):
        self.profiler = None

    def on_start(self, run: Run) -> None:
        if ProfilerHook.active:
            return
        import torch

        activities = [torch.profiler.ProfilerActivity.CPU]
        if run.device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        self.profiler = torch.profiler.profile(activities=activities)
        self.profiler.__enter__()
        ProfilerHook.active = True

    def on_epoch_end(self, run: Run) -> None:
        if self.profiler is None:
            return
        import socket

        profiler, self.profiler = self.profiler, None
        profiler.__exit__(None, None, None)
        ProfilerHook.active = False
        folder = run.run_dir / "profile"
        folder.mkdir(exist_ok=True)
        trace = folder / f"{socket.gethostname()}.epoch{run.counters.epoch}.pt.trace.json"
        profiler.export_chrome_trace(str(trace))
        table = profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
        log.info(f"profile of epoch {run.counters.epoch} (trace: {trace}; `tensorboard --logdir {folder}`):\n{table}")

    def on_end(self, run: Run, status: str, summary: dict | None, files: list[Path]) -> None:
        if self.profiler is not None:  # ended before its first epoch did
            self.profiler.__exit__(None, None, None)
            self.profiler, ProfilerHook.active = None, False


class CurveDiagnosisHook(Hook):
    """summary.json's `diagnosis`: what the curves say (too high a rate, overfitting...)."""

    def summarize(self, run: Run, rows: list[dict]) -> dict:
        from trainlab.diagnose.curves import diagnose, format_findings

        c = run.c
        findings = diagnose(rows, run.step_losses, initial_loss=c.loss_fn.initial_loss(c.splits.num_classes),
                            steps_per_epoch=c.steps_per_epoch, val_size=len(c.splits.val))
        if findings:
            log.info("diagnosis: " + format_findings(findings).replace("\n", "\n  "))
        return {"diagnosis": [f.to_dict() for f in findings]}


def run_hooks(cfg, main: bool, single_process: bool) -> Hooks:
    """The hooks of one run of config `cfg` (rank 0 alone writes diagnostics and trackers)."""
    hooks: list[Hook] = []
    if cfg.trainer.diagnostics != "off" and main:
        hooks.append(LiveDiagnosticsHook())
    hooks.append(TrackersHook())
    if cfg.trainer.get("profile") and main:
        hooks.append(ProfilerHook())
    if main and single_process:
        from trainlab.sweep.trial_reporter import trial_reporter

        reporter = trial_reporter(cfg.trainer.monitor)
        if reporter is not None:
            hooks.append(TrialReporterHook(reporter))
    if main:
        hooks.append(CurveDiagnosisHook())
    if main and cfg.get("callbacks"):
        from trainlab.app.callbacks import user_hooks

        hooks += user_hooks(list(cfg.callbacks))
    return Hooks(hooks)
