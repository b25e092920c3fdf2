"""Figures come from metrics.csv: drawn in line, in the sweep's background worker or by
`trainlab plot` later, they are the same bytes."""
import pytest

from conftest import run_tiny
from trainlab.app.cli import main
from trainlab.engine.figures import FigureWorker, draw_run_figures

FIGURES = ("curves.png", "diagnostics.png")


def test_a_figure_drawn_later_or_aside_equals_the_one_drawn_in_line(tmp_path):
    run = tmp_path / "run"
    run_tiny(run, ["trainer.epochs=2", "trainer.diagnostics_every=2"], figures=True)
    inline = {name: (run / name).read_bytes() for name in FIGURES}
    assert all(len(data) > 10_000 for data in inline.values())
    for name in FIGURES:
        (run / name).unlink()
    assert main(["plot", str(run)]) == 0
    assert {name: (run / name).read_bytes() for name in FIGURES} == inline
    for name in FIGURES:
        (run / name).unlink()
    worker = FigureWorker(wait=True)
    worker.submit(run)
    worker.close()
    assert {name: (run / name).read_bytes() for name in FIGURES} == inline


def test_the_background_drawer_finishes_after_the_command_returned(tmp_path):
    """By default nobody waits for the drawer: close() returns at once and the figures appear later,
    drawn by a process that outlives its caller's pipes (a failure lands in the run's train.log)."""
    import time

    run = tmp_path / "run"
    run_tiny(run, ["trainer.diagnostics_every=2"])
    missing = tmp_path / "gone"
    (missing / "metrics.csv").parent.mkdir()
    (missing / "metrics.csv").write_text("not,a\nmetrics,file\n")
    worker = FigureWorker(wait=False)
    worker.submit(missing)
    worker.submit(run)
    started = time.monotonic()
    worker.close()
    assert time.monotonic() - started < 0.5 and not (run / "diagnostics.png").exists()
    while not all((run / name).is_file() for name in FIGURES) and time.monotonic() - started < 60:
        time.sleep(0.1)
    time.sleep(0.3)  # the last figure's file is complete once written (savefig to a path)
    assert all((run / name).stat().st_size > 10_000 for name in FIGURES)


def test_inline_figures_are_drawn_in_the_calling_process_before_close_returns(tmp_path, monkeypatch):
    """TRAINLAB_FIGURES=inline (what this suite runs with): no drawer process, figures exist at once."""
    run = tmp_path / "run"
    run_tiny(run, ["trainer.diagnostics_every=2"])
    monkeypatch.setenv("TRAINLAB_FIGURES", "inline")
    worker = FigureWorker()
    worker.submit(run)
    assert worker._proc is None and all((run / name).stat().st_size > 10_000 for name in FIGURES)
    worker.close()


def test_plot_refuses_a_folder_without_runs(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "RUN_OR_SWEEP" in err


def test_a_run_without_metrics_draws_nothing(tmp_path):
    assert draw_run_figures(tmp_path) == []
