"""hydra/launcher=vectorized: seed replicates trained as one stacked model (trainlab.engine.steppers.StackedStepper, trainlab.engine.core).

Each test runs tiny sweeps in-process (tests/conftest.py train_in); a replicate's folder is
compared with its sequential twin's (the same job under the basic launcher)."""
import re
from pathlib import Path

import pytest
import torch

from tests.conftest import train_in
from trainlab.config import validate


def _with_spec(cfg):
    return cfg, validate(cfg)
from trainlab.engine import checkpoint as ckpt

TINY = ["dataset.subset=120", "trainer.batch_size=32", "trainer.progress=off", "trainer.threads=1",
        "trainer.epochs=2"]
# float tolerance of a replicate against its twin: the batched matmuls of the stacked step sum in
# another order than the twin's plain ones, and its fused optimizer kernels round differently
# (measured: at most 6e-8 after 6 steps)
ATOL = 1e-6


def sweep(root: Path, name: str, args: list[str], vectorized: bool = True) -> dict[str, Path]:
    """Run `trainlab train -m ARGS` in `root`/`name`; its job folders by their seed override."""
    launcher = ["hydra/launcher=vectorized"] if vectorized else []
    train_in(root, ["-m", *TINY, *args, *launcher, f"hydra.sweep.dir={name}"])
    return {re.sub(r"^\d+_", "", d.name): d for d in sorted((root / name).iterdir()) if d.is_dir()}


def last(folder: Path) -> dict:
    return ckpt.load(folder / "checkpoints" / "last.pt")


def test_replicates_match_their_sequential_twins(tmp_path):
    """Without dropout or augmentation each replicate ends with its twin's weights, optimizer state
    and metrics (within ATOL), and its folder holds the files a normal job leaves."""
    args = ["seed=0,1", "optimizer=adam,momentum", "regularizer=[l2,maxnorm]", "optimizer.clip_norm=1.0",
            "trainer.ema.decay=0.9", "schedule=cosine"]
    vec = sweep(tmp_path, "vec", args)
    seq = sweep(tmp_path, "seq", args, vectorized=False)
    assert len(vec) == len(seq) == 4  # two groups (adam, momentum) of two replicates
    for key in vec:
        names = {p.name for p in vec[key].iterdir()}
        assert names >= {"metrics.csv", "summary.json", "train.log", "checkpoints"}, names  # figures: `plot`
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
    first, second = [last(f)["model"]["1.weight"] for f in list(vec.values())[:2]]
    assert not torch.equal(first, second)


def test_dropout_replicates_keep_their_twins_init_and_data_order(tmp_path):
    """With dropout the masks are the group's own draws: each replicate starts from its twin's weights
    (the step-0 row is the same) and sees its twin's data order, then differs from it."""
    args = ["seed=0,1", "regularizer=dropout"]
    vec = sweep(tmp_path, "vec", args)
    seq = sweep(tmp_path, "seq", args, vectorized=False)
    for key in vec:
        step0 = [(f / "metrics.csv").read_text().splitlines()[1].split(",") for f in (vec[key], seq[key])]
        header = (seq[key] / "metrics.csv").read_text().splitlines()[0].split(",")
        at = {k: header.index(k) for k in ("val_loss", "val_acc", "train_eval_loss")}
        assert all(step0[0][i] == step0[1][i] for i in at.values())  # the same initial weights
        a, b = last(vec[key]), last(seq[key])
        assert torch.equal(a["data"]["shuffle"], b["data"]["shuffle"])  # the same permutations drawn
        assert not torch.allclose(a["model"]["1.weight"], b["model"]["1.weight"], atol=1e-4)  # other masks


@pytest.mark.parametrize("dropout", [True, False])
def test_each_replicate_draws_its_own_dropout_masks(tmp_path, dropout):
    """Two replicates with the same seed (same weights, same data order) in one group: equal after
    training without dropout, different with it, since every replicate gets its own masks."""
    from tests.conftest import _no_figures, compose_cfg
    from trainlab.engine.training import set_up_replicate, train_group

    overrides = [*TINY, "trainer.epochs=1", *(["regularizer=dropout"] if dropout else [])]
    reps = []
    for i in range(2):
        reps.append(set_up_replicate(*_with_spec(compose_cfg(overrides)), tmp_path / str(i), overrides, None, _no_figures, None, tmp_path / f"{i}.log"))
    train_group(reps)
    assert [r.summary['status'] for r in reps] == ["completed", "completed"]
    weights = [last(tmp_path / str(i))["model"]["1.weight"] for i in range(2)]
    assert torch.equal(*weights) is not dropout


@pytest.mark.slow  # ~10 s; the mid-epoch SIGTERM resume test below covers the same path in the default suite
def test_a_stopped_group_resumes_bit_identically(tmp_path):
    """A group stopped after its first epoch (trainer.stop_after, as a killed job's last.pt) goes on
    with `trainlab resume-sweep` from each replicate's last.pt and ends bit-identical to a group
    that ran through; the replicate folders are all it reads."""
    from trainlab.app.cli import main

    args = ["seed=0,1", "regularizer=dropout"]
    whole = sweep(tmp_path, "whole", args)
    cut = sweep(tmp_path, "cut", [*args, "trainer.stop_after=1"])
    assert all(last(f)["counters"]["epoch"] == 1 for f in cut.values())
    old = Path.cwd()
    try:
        import os

        os.chdir(tmp_path)
        assert main(["resume-sweep", "cut"]) == 0  # its second (and last) epoch
    finally:
        os.chdir(old)
    seed = lambda folders: {re.search(r"seed=\d+", k).group(): f for k, f in folders.items()}  # noqa: E731
    whole, cut = seed(whole), seed(cut)
    for key in whole:
        a, b = last(whole[key]), last(cut[key])
        assert b["counters"]["epoch"] == 2
        for name, tensor in a["model"].items():
            assert torch.equal(tensor, b["model"][name]), name
        loss = [[row.split(",")[:9] for row in (f / "metrics.csv").read_text().splitlines()[1:]]
                for f in (whole[key], cut[key])]
        assert loss[0] == loss[1]


@pytest.mark.parametrize("override,key", [
    ("optimizer=lbfgs", "optimizer"), ("norm=batchnorm", "norm"), ("trainer.compile=true", "trainer.compile"),
    ("trainer.precision=bf16", "trainer.precision"), ("arch=resnet", "arch"),
    ("trainer.data_placement=loader", "trainer.data_placement"), ("hydra/sweeper=optuna", "hydra/sweeper")])
def test_what_cannot_be_stacked_is_refused_before_any_folder(tmp_path, capsys, override, key):
    from trainlab.app.cli import main

    import os

    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        code = main(["train", "-m", "seed=0,1", override, "hydra/launcher=vectorized"])
    finally:
        os.chdir(old)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and key in err and "vectorized" in err, err
    assert list(tmp_path.iterdir()) == []  # nothing was made


def test_a_diverged_replicate_stops_alone(tmp_path):
    """One replicate's weights poisoned with NaN: it ends `diverged` after its first evaluation, frozen,
    while the other trains on to the end, as it would in a group of its own."""
    from tests.conftest import _no_figures, compose_cfg
    from trainlab.engine.training import set_up_replicate, train_group

    def group(names, poison=None):
        reps = []
        for i, name in enumerate(names):
            overrides = [*TINY, f"seed={i}"]
            reps.append(set_up_replicate(*_with_spec(compose_cfg(overrides)), tmp_path / name, overrides, None, _no_figures, None, tmp_path / f"{name}.log"))
        if poison is not None:
            with torch.no_grad():
                reps[poison].c.model[1].weight.fill_(float("nan"))
        train_group(reps)
        return reps

    reps = group(["a0", "a1"], poison=1)
    assert [r.summary['status'] for r in reps] == ["completed", "diverged"]
    assert last(tmp_path / "a1")["counters"]["epoch"] == 1 and last(tmp_path / "a0")["counters"]["epoch"] == 2
    group(["b0"])  # the surviving replicate's twin, in a group of its own
    for name, tensor in last(tmp_path / "b0")["model"].items():
        torch.testing.assert_close(last(tmp_path / "a0")["model"][name], tensor, atol=ATOL, rtol=0)


def test_a_full_disk_fails_the_group_in_one_line_and_keeps_each_last_checkpoint(tmp_path, monkeypatch, capsys):
    """The group's checkpoints are written in the background: a write that fails (no space left, at
    the second epoch's last.pt) still fails every replicate with the one-line error, in its summary
    and on stderr, and leaves each one's epoch-1 last.pt intact, with no temp file."""
    import builtins
    import json

    from tests.test_integrity import FullDisk
    from trainlab.app.cli import main

    opened = []

    def full_open(path, mode="r", *a, **k):
        fh = builtins.open(path, mode, *a, **k)
        if ".last." in str(path) and ".tmp-" in str(path):  # a last.pt (a group stages it as last.next.pt)
            opened.append(path)
            return FullDisk(fh, 0) if len(opened) > 2 else fh  # both replicates' epoch 1 lands
        return fh

    monkeypatch.setattr(ckpt, "open", full_open, raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "-m", *TINY, "seed=0,1", "hydra/launcher=vectorized", "hydra.sweep.dir=s"]) == 1
    assert "no space left on device while writing" in capsys.readouterr().err
    jobs = sorted(d for d in (tmp_path / "s").iterdir() if d.is_dir())
    assert len(jobs) == 2
    for job in jobs:
        summary = json.loads((job / "summary.json").read_text())
        assert summary["status"] == "failed" and "no space left on device while writing" in summary["error"]
        assert last(job)["counters"]["epoch"] == 1 and not list((job / "checkpoints").glob(".*.tmp-*"))


def test_groups_are_a_configurations_seeds_capped_by_replicas_per_group():
    from trainlab.app.vectorize_groups import plan_groups

    jobs = [(i, [f"activation={a}", f"seed={s}"]) for i, (a, s) in enumerate((a, s) for a in ("relu", "tanh")
                                                                             for s in range(3))]
    jobs.append((6, ["activation=relu", "dataset.cv.fold=1", "seed=0"]))  # another fold: another split
    groups = plan_groups(jobs, lambda job: 2)
    assert [[i for i, _ in g] for g in groups] == [[0, 1], [2], [3, 4], [5], [6]]


def test_a_group_signalled_mid_epoch_resumes_bit_identically(tmp_path, monkeypatch):
    """SIGTERM in the middle of an epoch: every replicate's last.pt records where the epoch stopped;
    runs built from those checkpoints finish the group bit-identical to one never stopped."""
    import os
    import signal

    from tests.conftest import _no_figures, compose_cfg
    from trainlab.engine.training import set_up_replicate, train_group
    from trainlab.engine.stacked import Stack

    overrides = [*TINY, "regularizer=dropout", "augment=[flip,crop]"]  # each replicate's augmentation stream resumes too

    def group(prefix, resume=False):
        reps = []
        for i in range(2):
            folder = tmp_path / f"{prefix}{i}"
            state = ckpt.load(folder / "checkpoints" / "last.pt") if resume else None
            cfg = compose_cfg([*overrides, f"seed={i}", *(["resume=true"] if resume else [])])
            reps.append(set_up_replicate(*_with_spec(cfg), folder, overrides, state, _no_figures, None, tmp_path / f"{prefix}{i}.log"))
        train_group(reps)
        return reps

    group("whole")
    step = Stack.step
    calls = []

    def signalled(self, x, y):
        calls.append(1)
        if len(calls) == 2:  # during the first epoch's second of three steps
            os.kill(os.getpid(), signal.SIGTERM)
        return step(self, x, y)

    monkeypatch.setattr(Stack, "step", signalled)
    assert [r.summary['status'] for r in group("cut")] == ["interrupted", "interrupted"]
    assert last(tmp_path / "cut0")["counters"]["batch_in_epoch"] == 2
    monkeypatch.setattr(Stack, "step", step)
    assert [r.summary['status'] for r in group("cut", resume=True)] == ["completed", "completed"]
    for i in range(2):
        a, b = last(tmp_path / f"whole{i}"), last(tmp_path / f"cut{i}")
        for name, tensor in a["model"].items():
            assert torch.equal(tensor, b["model"][name]), name
        assert torch.equal(a["data"]["shuffle"], b["data"]["shuffle"])


@pytest.mark.parametrize("options", [["arch=cnn"], ["norm=layernorm", "activation=prelu", "optimizer=rmsprop"],
                                     ["loss=hinge", "optimizer=adagrad", "regularizer=l1"],
                                     ["augment=[flip,crop,noise,mixup]"]])
def test_other_stackable_options_match_their_twins(tmp_path, options):
    """The allowed architectures, norms, activations with parameters, losses, optimizers and
    augmentations (each replicate draws from its own generator, as its run does), in process: a
    group of two against each seed's own run (conftest.run_tiny)."""
    from tests.conftest import _no_figures, compose_cfg, run_tiny
    from trainlab.engine.training import set_up_replicate, train_group

    reps = []
    for i in range(2):
        overrides = [*TINY, *options, f"seed={i}"]
        reps.append(set_up_replicate(*_with_spec(compose_cfg(overrides)), tmp_path / f"v{i}", overrides, None, _no_figures, None, tmp_path / f"v{i}.log"))
    train_group(reps)
    for i in range(2):
        assert run_tiny(tmp_path / f"s{i}", [*TINY, *options, f"seed={i}"])["status"] == reps[i].status == "completed"
        a, b = last(tmp_path / f"v{i}"), last(tmp_path / f"s{i}")
        for name, tensor in b["model"].items():
            torch.testing.assert_close(a["model"][name], tensor, atol=ATOL, rtol=0)


def test_early_stopping_ends_replicates_as_their_runs_would(tmp_path):
    from tests.conftest import _no_figures, compose_cfg
    from trainlab.engine.training import set_up_replicate, train_group

    overrides = [*TINY, "trainer.epochs=4", "trainer.early_stop.patience=1", "trainer.early_stop.min_delta=10"]
    reps = []
    for i in range(2):
        reps.append(set_up_replicate(*_with_spec(compose_cfg([*overrides, f"seed={i}"])), tmp_path / str(i), overrides, None, _no_figures, None, tmp_path / f"{i}.log"))
    train_group(reps)
    for i, rep in enumerate(reps):
        assert rep.summary["status"] == "completed"
        state = last(tmp_path / str(i))
        assert state["counters"]["stopped_early"] and state["counters"]["epoch"] == 2


def test_plain_mlps_take_the_batched_path_and_other_models_vmap():
    """Stack.forward's hand-written path takes Flatten, Linear with bias and parameter-free
    elementwise modules only; anything else (parameters, buffers, other shapes) goes through vmap.
    That both paths train like the sequential twins is the tests above (mlp: batched; cnn, layernorm, prelu: vmap)."""
    from torch import nn

    from trainlab.engine.stacked import _batched_plan
    from trainlab.nn.activations import Maxout

    mlp = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ELU(), nn.Dropout(0.5), nn.Linear(3, 2))
    assert [name for name, _ in _batched_plan(mlp)] == ["0", "1", None, None, "4"]
    for other in (nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3)), nn.Sequential(nn.Linear(4, 3), nn.PReLU()),
                  nn.Sequential(nn.Linear(4, 3), Maxout(3)), nn.Sequential(nn.Linear(4, 3, bias=False)),
                  nn.Sequential(nn.Conv2d(1, 2, 3)), nn.Sequential(nn.Flatten(2)), nn.Linear(4, 3)):
        assert _batched_plan(other) is None, other


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("options", [["optimizer=adam", "augment=[flip,crop]"], ["optimizer=adagrad", "arch=cnn"]])
def test_a_group_trains_on_the_gpu_close_to_its_twins(tmp_path, options):
    """On CUDA: the stacked step, its fused optimizer where the device has one (Adagrad's fused kernel
    is CPU-only, so it falls back to foreach) and the per-replicate augmentation. GPU kernels may
    reduce in other orders than the twins' runs, hence the looser tolerance."""
    from tests.conftest import _no_figures, compose_cfg, run_tiny
    from trainlab.engine.training import set_up_replicate, train_group

    overrides = [*TINY, *options, "trainer.device=cuda"]
    reps = []
    for i in range(2):
        reps.append(set_up_replicate(*_with_spec(compose_cfg([*overrides, f"seed={i}"])), tmp_path / f"v{i}", overrides, None, _no_figures, None, tmp_path / f"v{i}.log"))
    train_group(reps)
    for i in range(2):
        assert reps[i].status == "completed" and reps[i].summary["device"].startswith("cuda")
        assert run_tiny(tmp_path / f"s{i}", [*overrides, f"seed={i}"])["status"] == "completed"
        a, b = last(tmp_path / f"v{i}"), last(tmp_path / f"s{i}")
        for name, tensor in b["model"].items():
            torch.testing.assert_close(a["model"][name], tensor, atol=1e-4, rtol=0)
