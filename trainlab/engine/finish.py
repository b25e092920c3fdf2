"""The end of a run: the test of its best checkpoint, summary.json, its figures, its hooks told.

Also what a run that never got that far leaves: a failure summary (and the traceback in the log).
"""
from __future__ import annotations

import logging
import traceback
from pathlib import Path

from trainlab.engine import distributed
from trainlab.engine.eval_metrics import plot_confusion
from trainlab.engine.metrics import STEP_LOSSES, read_floats, write_step_losses
from trainlab.engine.run import Run
from trainlab.engine.summary import failure_summary, run_summary, write_summary
from trainlab.errors import ConfigError

log = logging.getLogger("trainlab")


def finish(run: Run, status: str) -> dict:
    """End `run` with `status`: summary.json written, figures drawn, hooks told; returns the summary."""
    run.status = status
    if run.checkpoint_writer is not None:
        run.checkpoint_writer.drain()  # best.pt may be read below; a result implies its checkpoints
    distributed.barrier()  # rank 0 has written every metrics row
    rows = read_floats(run.metrics.path)
    test = test_best(run) if status == "completed" else None
    c, loop = run.c, run.loop
    if loop.diag is not None and loop.diag.summary():
        log.warning(f"diagnostics: persistent {loop.diag.summary()} (see diagnostics.png)")
    summary = run_summary(run, rows, test, run.device)
    summary |= {"diagnosis": []} | (run.hooks.summarize(run, rows) if run.main else {})
    summary["world_size"] = c.dist.world
    if run.main:
        write_summary(run.run_dir / "summary.json", summary)  # the result first: figures can be redrawn
        write_step_losses(run.run_dir / STEP_LOSSES, run.step_losses)  # curves.png's per-step loss
        figures = run.draw_figures(run.run_dir) if rows and run.draw_figures is not None else None
        extra = [p for p in [run.run_dir / "confusion.png"] if p.is_file()]
        run.hooks.on_end(run, status, summary, [*(figures or []), *extra])
    distributed.barrier()
    log.info(f"{status}: results in {run.run_dir}")
    run.summary = summary
    return summary


def test_best(run: Run) -> dict:
    """The test split scored with the best checkpoint (and the EMA, Polyak and TTA variants)."""
    c, loop = run.c, run.loop
    weights = run.best_weights()
    if weights is not None:
        c.model.load_state_dict(weights)
    test = loop.evaluate(c.splits.test)
    confusion = test.pop("confusion", None)
    if confusion is not None and run.main:
        plot_confusion(confusion, run.run_dir / "confusion.png",
                       f"{run.run_dir.name}: test split, best checkpoint (epoch {run.counters.best_epoch})")
    log.info(f"test (best checkpoint, epoch {run.counters.best_epoch}): loss {test['loss']:.4f} "
             f"acc {100 * test['acc']:.2f}%")
    tta_mode = run.trainer.tta
    if tta_mode != "none":
        test["tta"] = tta_mode
        test["tta_views"] = loop.tta_view_count(tta_mode, tuple(c.splits.test.x.shape[1:]))
        tta = loop.evaluate(c.splits.test, tta=tta_mode)
        test |= {"tta_loss": tta["loss"], "tta_acc": tta["acc"]}
        log.info(f"test with {tta_mode} test-time augmentation ({test['tta_views']} views): acc {100 * tta['acc']:.2f}%")
    if c.ema is not None:
        ema = loop.evaluate(c.splits.test, model=c.ema.model)
        test |= {"ema_loss": ema["loss"], "ema_acc": ema["acc"]}
        log.info(f"test of the weight average (EMA, final): acc {100 * ema['acc']:.2f}%")
    if c.polyak is not None and c.polyak.count:
        avg = loop.evaluate_polyak(c.polyak, c.splits.test)
        test |= {"polyak_loss": avg["loss"], "polyak_acc": avg["acc"], "polyak_epochs": c.polyak.count}
        log.info(f"test of the Polyak average of the last {c.polyak.count} epochs: acc {100 * avg['acc']:.2f}%")
    return test


def record_failure(run_dir: Path, cfg, overrides, started: float, err: BaseException, run: Run | None = None):
    """A failed (or hard-interrupted) run still leaves a summary.json saying why; then the error
    propagates. Its hooks (trackers) are told first, when the run got as far as having them."""
    if run is not None:
        run.hooks.on_end(run, "interrupted" if isinstance(err, KeyboardInterrupt) else "failed", None, [])
    if not isinstance(err, ConfigError):
        log.error("".join(traceback.format_exception(err)).rstrip(), extra={"file_only": True})
    if distributed.current().is_main:
        try:
            Path(run_dir).mkdir(parents=True, exist_ok=True)
            write_summary(Path(run_dir) / "summary.json", failure_summary(run_dir, cfg, overrides, started, err))
        except OSError as write_err:  # a full disk: the error being recorded matters more
            log.warning(f"could not record the failure in summary.json: {write_err}")
    raise err
