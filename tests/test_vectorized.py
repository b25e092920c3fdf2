"""hydra/launcher=vectorized: seed replicates trained as one stacked model (trainlab.engine.vectorized).

Each test runs tiny sweeps in-process (tests/conftest.py train_in); a replicate's folder is
compared with its sequential twin's (the same job under the basic launcher)."""
import re
from pathlib import Path

import pytest
import torch

from tests.conftest import train_in
from trainlab.engine import checkpoint as ckpt

TINY = ["dataset.subset=120", "trainer.batch_size=32", "trainer.progress=off", "trainer.threads=1",
        "trainer.epochs=2"]
# float tolerance of a replicate against its twin: the batched matmuls of the stacked step sum in
# another order than the twin's plain ones (measured: at most 3e-8 after 6 steps)
ATOL = 1e-6


def sweep(root: Path, name: str, args: list[str], vectorized: bool = True) -> dict[str, Path]:
    """Run `trainlab train -m ARGS` in `root`/`name`; its job folders by their seed override."""
    launcher = ["hydra/launcher=vectorized"] if vectorized else []
    train_in(root, ["-m", *TINY, *args, *launcher, f"hydra.sweep.dir={name}"])
    return {re.search(r"seed=\d+", d.name).group(): d for d in sorted((root / name).iterdir()) if d.is_dir()}


def last(folder: Path) -> dict:
    return ckpt.load(folder / "checkpoints" / "last.pt")


def test_replicates_match_their_sequential_twins(tmp_path):
    """Without dropout or augmentation each replicate ends with its twin's weights, optimizer state
    and metrics (within ATOL), and its folder holds the files a normal job leaves."""
    args = ["seed=0,1,2", "regularizer=l2", "optimizer.clip_norm=1.0", "trainer.ema.decay=0.9"]
    vec = sweep(tmp_path, "vec", args)
    seq = sweep(tmp_path, "seq", args, vectorized=False)
    assert sorted(vec) == sorted(seq) == ["seed=0", "seed=1", "seed=2"]
    for key in vec:
        names = {p.name for p in vec[key].iterdir()}
        assert names >= {"metrics.csv", "summary.json", "train.log", "curves.png", "checkpoints"}, names
        assert names == {p.name for p in seq[key].iterdir()}
        a, b = last(vec[key]), last(seq[key])
        for part in ("model",):
            for name, tensor in b[part].items():
                torch.testing.assert_close(a[part][name], tensor, atol=ATOL, rtol=0)
        torch.testing.assert_close(a["ema"]["model"], b["ema"]["model"], atol=ATOL, rtol=0)
        for idx, state in b["optimizer"]["state"].items():
            for k, v in state.items():
                torch.testing.assert_close(a["optimizer"]["state"][idx][k], v, atol=ATOL, rtol=0)
        assert a["counters"]["step"] == b["counters"]["step"]
        assert torch.equal(a["data"]["shuffle"], b["data"]["shuffle"])  # the same data order
        rows_a = (vec[key] / "metrics.csv").read_text().splitlines()
        rows_b = (seq[key] / "metrics.csv").read_text().splitlines()
        assert rows_a[0] == rows_b[0] and len(rows_a) == len(rows_b)  # the same columns and evaluations
    # replicates of one group are still different runs
    assert not torch.equal(last(vec["seed=0"])["model"]["1.weight"], last(vec["seed=1"])["model"]["1.weight"])
