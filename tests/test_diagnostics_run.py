"""Live diagnostics wired into a real run: columns in metrics.csv, a figure, flags in the log."""
import csv

import pytest

from conftest import run_tiny


@pytest.mark.parametrize("level", ["light", "full"])
def test_diagnostics_levels_write_columns_and_figure(tmp_path, level):
    s = run_tiny(tmp_path, [f"trainer.diagnostics={level}", "trainer.diagnostics_every=2", "trainer.epochs=2"],
                 figures=True)
    assert s["status"] == "completed"
    with open(tmp_path / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    ratios = [k for k in rows[0] if k.endswith(".update_ratio")]
    assert len(ratios) == 3  # the three Linear layers of the default MLP
    assert all(0 < float(rows[-1][k]) < 1 for k in ratios)
    has_acts = any(k.endswith(".act_std") for k in rows[0])
    assert has_acts == (level == "full")
    assert (tmp_path / "diagnostics.png").is_file()


def test_diagnostics_off_adds_nothing(tmp_path):
    run_tiny(tmp_path, ["trainer.diagnostics=off"], figures=True)
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0]
    assert "diag/" not in header and not (tmp_path / "diagnostics.png").exists()


def test_default_init_passes_the_initial_loss_check():
    """The shipped default (kaiming, head_scale 0.1) starts near ln(10), as `trainlab check` wants."""
    import math

    import torch

    from conftest import compose_cfg
    from trainlab.config import validate
    from trainlab.engine.assemble import assemble

    c = assemble(validate(compose_cfg([])), torch.device("cpu"))
    x = c.preprocess(c.splits.train.x[:256].float())
    loss = c.loss_fn(c.model(x), c.splits.train.y[:256]).item()
    assert abs(loss - math.log(10)) / math.log(10) < 0.1
