"""Figures come from metrics.csv: drawn in line, in the sweep's background worker or by
`trainlab plot` later, they are the same bytes."""
import pytest

from conftest import run_tiny
from trainlab.cli import main
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
    worker = FigureWorker()
    worker.submit(run)
    worker.close()
    assert {name: (run / name).read_bytes() for name in FIGURES} == inline


def test_plot_refuses_a_folder_without_runs(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "RUN_OR_SWEEP" in err


def test_a_run_without_metrics_draws_nothing(tmp_path):
    assert draw_run_figures(tmp_path) == []
