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
    if main and single_process:
        from trainlab.sweep.optuna_search import trial_reporter

        reporter = trial_reporter(cfg.trainer.monitor)
        if reporter is not None:
            hooks.append(TrialReporterHook(reporter))
    if main:
        hooks.append(CurveDiagnosisHook())
    if main and cfg.get("callbacks"):
        from trainlab.app.callbacks import user_hooks

        hooks += user_hooks(list(cfg.callbacks))
    return Hooks(hooks)
