"""Issue 14: MSE loss, stochastic depth, fractional pooling, multi-crop TTA, Polyak averaging,
top-k ensembles, and the three defects (snapshot ensembles, lbfgs + fp16, table.tex)."""
import copy
import csv
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import compose_cfg, run_tiny
from test_resume import assert_same_tensors, final_state, metrics_without_time
from trainlab.config import validate
from trainlab.errors import ConfigError


def spec_of(*overrides):
    return validate(compose_cfg(list(overrides)))


def model_of(*overrides, input_shape=(1, 8, 8), classes=10):
    from trainlab.nn import build_model

    return build_model(spec_of(*overrides), input_shape, classes)


# -- loss=mse ---------------------------------------------------------------------------------------
def test_mse_is_the_squared_error_to_the_one_hot_or_soft_target():
    from trainlab.optim.losses import LOSSES

    loss = LOSSES["mse"].build(spec_of("loss=mse").loss)
    scores = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    # (2-1)^2 + 0 + 1 = 2 for example 0 (class 0); 0.25 + 0.25 + 0 = 0.5 for example 1 (class 1)
    assert loss(scores, torch.tensor([0, 1])).item() == pytest.approx((2 + 0.5) / 2)
    soft = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    assert loss(scores, soft).item() == pytest.approx(((1.5**2 + 0.25 + 1) + (0.25 + 0.25 + 1)) / 2)
    assert loss.initial_loss(10) == 1.0


def test_mse_run_reports_the_squared_error_of_its_best_checkpoint(tmp_path):
    from trainlab.engine.assemble import assemble
    from trainlab.data.preprocess import to_float

    args = ["loss=mse", "trainer.epochs=3"]
    s = run_tiny(tmp_path, args)
    assert s["status"] == "completed" and {"acc", "loss"} <= set(s["test"])
    c = assemble(spec_of("dataset.subset=120", *args), torch.device("cpu"))
    c.model.load_state_dict(torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)["model"])
    c.model.eval()
    with torch.no_grad():
        scores = c.model(c.preprocess(to_float(c.splits.val.x)))
    by_hand = ((scores - nn.functional.one_hot(c.splits.val.y, 10)) ** 2).sum(1).mean().item()
    assert s["best"]["val_loss"] == pytest.approx(by_hand, rel=1e-5)


# -- regularizer=stochastic_depth -------------------------------------------------------------------
SD_RESNET = ["arch=resnet", "arch.depth=14", "arch.width=4", "regularizer=stochastic_depth",
             "regularizer.stochastic_depth.p=0.5"]


def dropped_fraction(block, x, dropped_output) -> float:
    """The fraction of examples whose block output is what the shortcut alone gives."""
    with torch.no_grad():
        out = block(x)
    return (out == dropped_output).flatten(1).all(dim=1).float().mean().item()


def test_stochastic_depth_drops_branches_linearly_with_depth_and_is_deterministic_in_eval():
    from trainlab.nn.archs import BasicBlock

    torch.manual_seed(0)
    model = model_of(*SD_RESNET)
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert [b.drop.p for b in blocks] == pytest.approx([0.5 * l / 6 for l in range(1, 7)])  # p * l / L
    model.train()
    first, last = blocks[0], blocks[-1]  # both have identity shortcuts: a dropped branch leaves relu(x)
    x = torch.randn(4000, 4, 4, 4)
    assert dropped_fraction(first, x, torch.relu(x)) == pytest.approx(0.5 / 6, abs=0.03)
    x = torch.randn(4000, 16, 2, 2)
    assert dropped_fraction(last, x, torch.relu(x)) == pytest.approx(0.5, abs=0.04)
    # kept branches are scaled by 1/(1-p): the mask's expectation is 1
    mask = blocks[-1].drop(torch.ones(20000, 1))
    assert set(mask.unique().tolist()) == {0.0, 2.0} and mask.mean().item() == pytest.approx(1.0, abs=0.03)

    model.eval()
    x = torch.randn(16, 1, 8, 8)
    plain = model_of("arch=resnet", "arch.depth=14", "arch.width=4")
    plain.load_state_dict(model.state_dict())  # same keys: the drop modules hold no state
    plain.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x)) and torch.equal(model(x), plain(x))
        x = torch.randn(500, 16, 2, 2)
        assert dropped_fraction(last, x, torch.relu(x)) == 0.0  # eval mode never drops


def test_stochastic_depth_in_a_torchvision_resnet_survives_a_deepcopy_in_eval():
    torch.manual_seed(0)
    model = model_of("arch=torchvision", "arch.model=resnet18", "regularizer=stochastic_depth",
                     "regularizer.stochastic_depth.p=0.5")
    net = model[1]
    drops = [b.stochastic_depth.p for layer in (net.layer1, net.layer2, net.layer3, net.layer4) for b in layer]
    assert drops == pytest.approx([0.5 * (i + 1) / 8 for i in range(8)])
    model.train()
    x = torch.randn(400, 512, 1, 1)
    assert dropped_fraction(net.layer4[-1], x, torch.relu(x)) == pytest.approx(0.5, abs=0.1)
    # an EMA/Polyak copy in eval mode is deterministic while the trained model stays in train mode
    average = copy.deepcopy(model).eval()
    images = torch.randn(8, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(average(images), average(images))


@pytest.mark.parametrize("overrides", [[], ["arch=cnn"], ["arch=torchvision", "arch.model=vgg11"]])
def test_stochastic_depth_without_residual_blocks_is_refused_before_anything_is_built(overrides):
    with pytest.raises(ConfigError, match="regularizer='stochastic_depth'.*residual blocks") as err:
        spec_of(*overrides, "regularizer=stochastic_depth")
    assert "\n" not in str(err.value)


def test_stochastic_depth_trains_a_resnet(tmp_path):
    s = run_tiny(tmp_path, [*SD_RESNET, "trainer.epochs=2"])  # the drop frequency is tested above
    assert s["status"] == "completed" and s["final"]["train_loss"] < 10 and "acc" in s["test"]


# -- arch.pool=fractional ---------------------------------------------------------------------------
def pooled_sizes(model, x) -> list[tuple]:
    from trainlab.nn.stochastic import FractionalMaxPool

    sizes = []
    hooks = [m.register_forward_hook(lambda m, i, out: sizes.append(tuple(out.shape[-2:])))
             for m in model.modules() if isinstance(m, FractionalMaxPool)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return sizes


def test_fractional_pooling_output_size_and_eval_determinism():
    cnn = ["arch=cnn", "arch.channels=[4,4,4]", "arch.pool=fractional"]
    model = model_of(*cnn, "arch.pool_ratio=0.7", input_shape=(3, 32, 32))
    x = torch.rand(4, 3, 32, 32)
    model.train()
    assert pooled_sizes(model, x) == [(22, 22), (15, 15), (10, 10)]  # int(32*.7), int(22*.7), int(15*.7)
    model.eval()
    assert pooled_sizes(model, x) == [(22, 22), (15, 15), (10, 10)]
    # 8x8 digits with ratio 0.5: 4, 2, 1, then no more pooling
    digits = model_of("arch=cnn", "arch.channels=[4,4,4,4]", "arch.pool=fractional", "arch.pool_ratio=0.5")
    assert pooled_sizes(digits, torch.rand(2, 1, 8, 8)) == [(4, 4), (2, 2), (1, 1)]
    # training draws the regions from torch's generator; eval uses one fixed draw and leaves it alone
    state = torch.get_rng_state()
    with torch.no_grad():
        a, b = model(x), model(x)
    assert torch.equal(a, b) and torch.equal(torch.get_rng_state(), state)
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))


# -- trainer.tta=multicrop --------------------------------------------------------------------------
def test_multicrop_view_count_follows_its_settings():
    from trainlab.data.augment import tta_views
    from trainlab.schemas.trainer import MulticropSchema

    x = torch.rand(3, 1, 8, 8)
    default = tta_views(x, "multicrop")
    assert len(default) == 10 and all(v.shape == x.shape for v in default)  # 5 crops x 2
    assert torch.equal(default[1], default[0].flip(-1))
    assert len(tta_views(x, "multicrop", multicrop=MulticropSchema(sizes=[0.75, 1.0], corners=False))) == 4
    assert len(tta_views(x, "multicrop", multicrop=MulticropSchema(sizes=[0.6, 0.8], flip=False))) == 10
    whole = tta_views(x, "multicrop", multicrop=MulticropSchema(sizes=[1.0], flip=False))
    assert len(whole) == 1 and torch.equal(whole[0], x)
    with pytest.raises(ConfigError, match="multicrop.sizes"):
        spec_of("trainer.tta=multicrop", "trainer.multicrop.sizes=[1.5]")


def test_multicrop_is_reported_with_its_view_count(tmp_path):
    s = run_tiny(tmp_path, ["trainer.tta=multicrop", "trainer.multicrop.sizes=[0.75,0.875,1.0]"])
    assert s["test"]["tta"] == "multicrop" and s["test"]["tta_views"] == (5 + 5 + 1) * 2
    assert 0 <= s["test"]["tta_acc"] <= 1 and "acc" in s["test"]


# -- trainer.polyak ---------------------------------------------------------------------------------
def test_polyak_average_is_the_mean_of_the_last_epochs_with_batchnorm_recomputed(tmp_path):
    from trainlab.data.preprocess import to_float
    from trainlab.engine.assemble import assemble

    args = ["trainer.epochs=3", "trainer.polyak.epochs=2", "trainer.snapshots=true", "norm=batchnorm"]
    s = run_tiny(tmp_path, args)
    assert s["test"]["polyak_epochs"] == 2 and 0 <= s["test"]["polyak_acc"] <= 1
    average = final_state(tmp_path)["polyak"]["model"]
    shots = [torch.load(tmp_path / "checkpoints" / f"snapshot_e{e:03d}.pt", weights_only=True)["model"] for e in (2, 3)]
    params = [k for k in shots[0] if "running" not in k and "num_batches" not in k]
    assert len(params) == 10  # 3 linear layers' weight and bias, 2 batch norms' weight and bias
    for k in params:
        assert torch.allclose(average[f"module.{k}"], (shots[0][k] + shots[1][k]) / 2, atol=1e-6), k
    assert not torch.allclose(average["module.1.weight"], shots[1]["1.weight"])
    # the first batch norm's statistics: those of the averaged first layer's outputs on the training split
    c = assemble(spec_of("dataset.subset=120", *args), torch.device("cpu"))
    inputs = c.preprocess(to_float(c.splits.train.x)).flatten(1)
    hidden = inputs @ average["module.1.weight"].T + average["module.1.bias"]
    assert torch.allclose(average["module.2.running_mean"], hidden.mean(0), atol=1e-5)
    assert torch.allclose(average["module.2.running_var"], hidden.var(0), rtol=1e-4, atol=1e-5)
    with open(tmp_path / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["val_acc_polyak"] != "" for r in rows] == [False, False, True, True]  # inside the window only (row 0: step 0)


def test_polyak_and_fractional_pooling_resume_bit_identical(tmp_path):
    args = ["arch=cnn", "arch.channels=[8,8]", "arch.pool=fractional", "norm=batchnorm", "regularizer=dropout",
            "trainer.epochs=3", "trainer.polyak.epochs=2"]
    run_tiny(tmp_path / "a", args)
    run_tiny(tmp_path / "b", [*args, "trainer.stop_after=2"])
    run_tiny(tmp_path / "b", [*args, "resume=true"])
    a, b = final_state(tmp_path / "a"), final_state(tmp_path / "b")
    assert_same_tensors(a["model"], b["model"])
    assert_same_tensors(a["polyak"]["model"], b["polyak"]["model"])
    assert metrics_without_time(tmp_path / "a") == metrics_without_time(tmp_path / "b")


def test_polyak_window_must_fit_the_run():
    with pytest.raises(ConfigError, match="polyak.epochs"):
        spec_of("trainer.epochs=3", "trainer.polyak.epochs=4")


# -- trainlab ensemble: --top K --by, --snapshots ---------------------------------------------------
def fake_job(sweep, num, val_acc, val_loss, fold=None, status="completed", best_epoch=1):
    from test_table import make_job

    overrides = [f"optimizer.lr={num}"] + (["dataset.cv.folds=3", f"dataset.cv.fold={fold}"] if fold is not None else [])
    job = make_job(sweep, num, overrides, {"status": status, "best": {"epoch": best_epoch, "val_acc": val_acc,
                                                                      "val_loss": val_loss}})
    (job / "checkpoints").mkdir()
    (job / "checkpoints" / "best.pt").write_bytes(b"")
    return job


def test_top_k_picks_the_best_jobs_by_the_metric(tmp_path):
    from trainlab.app.ensemble_command import top_runs

    sweep = tmp_path / "sweep"
    results = [(0.5, 0.9), (0.9, 0.4), (0.7, 0.2), (0.8, 0.5)]  # (val_acc, val_loss) of jobs 0..3
    jobs = [fake_job(sweep, i, acc, loss) for i, (acc, loss) in enumerate(results)]
    fake_job(sweep, 4, 0.99, 0.01, status="failed")  # only completed jobs count
    assert [p.run for p in top_runs([str(sweep)], 2, "val_acc")] == [jobs[1], jobs[3]]
    assert [p.run for p in top_runs([str(sweep)], 3, "val_loss")] == [jobs[2], jobs[1], jobs[3]]
    with pytest.raises(ConfigError, match="at most 4"):
        top_runs([str(sweep)], 5, "val_acc")


def test_top_k_of_a_cv_sweep_takes_one_member_per_fold(tmp_path):
    from trainlab.app.ensemble_command import top_runs

    sweep = tmp_path / "cv"
    a, b, c, d = (fake_job(sweep, 0, 0.90, 0.3, fold=0), fake_job(sweep, 1, 0.85, 0.3, fold=0),
                  fake_job(sweep, 2, 0.60, 0.3, fold=1), fake_job(sweep, 3, 0.70, 0.3, fold=2))
    picks = top_runs([str(sweep)], 3, "val_acc")
    assert [p.run for p in picks] == [a, d, c] and [p.fold for p in picks] == ["0", "2", "1"]
    with pytest.raises(ConfigError, match="3 folds"):
        top_runs([str(sweep)], 4, "val_acc")


def test_cv_ensemble_of_the_top_folds_on_real_runs(tmp_path, capsys):
    from trainlab.app.cli import main

    sweep = tmp_path / "sweep"
    for fold in range(3):
        run_tiny(sweep / f"{fold}_fold", ["dataset.cv.folds=3", f"dataset.cv.fold={fold}", "trainer.epochs=2"])
    accs = {p.name: json.loads((p / "summary.json").read_text())["best"]["val_acc"] for p in sweep.iterdir()}
    assert main(["ensemble", str(sweep), "--top", "2", "--by", "val_acc", "--out", str(tmp_path / "e.json")]) == 0
    out = json.loads((tmp_path / "e.json").read_text())
    chosen = [s["run"].rsplit("/", 1)[-1] for s in out["selected"]]
    assert [accs[c] for c in chosen] == sorted(accs.values(), reverse=True)[:2]  # the two best, best first
    assert len({s["fold"] for s in out["selected"]}) == 2 and out["n"] == 2
    assert [m["checkpoint"] for m in out["members"]] == [f"{s['run']}/checkpoints/best.pt" for s in out["selected"]]
    printed = capsys.readouterr().out
    assert "ensemble of 2" in printed and printed.count("selected ") == 2


def test_a_job_named_twice_is_one_ensemble_member(tmp_path):
    """`ensemble S S`, `S S/job`, `--top` over `S S`: each job once (it said "ensemble of 8" for 4 jobs)."""
    from trainlab.app.ensemble_command import member_checkpoints, top_runs

    sweep = tmp_path / "sweep"
    jobs = [fake_job(sweep, i, 0.5 + i / 10, 0.5) for i in range(4)]
    assert len(member_checkpoints([str(sweep), str(sweep)], snapshots=False)) == 4
    assert len(member_checkpoints([str(sweep), f"{sweep}/", str(jobs[0])], snapshots=False)) == 4
    assert [p.run for p in top_runs([str(sweep), str(sweep)], 2, "val_acc")] == [jobs[3], jobs[2]]


def test_per_row_ensembles_each_rows_seeds_on_real_runs(tmp_path, capsys):
    """Two rates x two seeds: `--per-row` makes one ensemble of the two seeds of each rate and prints
    them as a table; the plain command is one ensemble of all four jobs (or of `S S`: still four)."""
    import yaml

    from trainlab.app.cli import main

    sweep = tmp_path / "sweep"
    for num, (lr, seed) in enumerate([("0.001", 0), ("0.001", 1), ("0.01", 0), ("0.01", 1)]):
        overrides = [f"optimizer.lr={lr}", f"seed={seed}"]
        job = sweep / f"{num}_{','.join(overrides)}"  # a sweep job folder as Hydra names it
        run_tiny(job, overrides)
        (job / ".hydra").mkdir()
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    capsys.readouterr()
    assert main(["ensemble", str(sweep), "--per-row", "--out", str(tmp_path / "rows.json")]) == 0
    rows = json.loads((tmp_path / "rows.json").read_text())["rows"]
    assert [(r["label"], r["n"]) for r in rows] == [("optimizer.lr=0.001", 2), ("optimizer.lr=0.01", 2)]
    for row in rows:
        lr = row["row"]["optimizer.lr"]
        assert all(f"optimizer.lr={lr}," in m["checkpoint"] for m in row["members"])  # the row's own jobs
        assert row["members_mean_test_acc"] == pytest.approx(sum(m["test_acc"] for m in row["members"]) / 2)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split()[:2] == ["row", "members"] and len(printed) == 3
    assert printed[2].startswith("optimizer.lr=0.01 ") and f"{100 * rows[1]['ensemble_test_acc']:.2f}" in printed[2]
    assert main(["ensemble", str(sweep), str(sweep), "--out", str(tmp_path / "all.json")]) == 0
    assert json.loads((tmp_path / "all.json").read_text())["n"] == 4
    preset = (Path(__file__).parents[1] / "conf" / "experiment" / "ema_ensembles.yaml").read_text()
    assert "trainlab ensemble outputs/sweeps/<that sweep> --per-row" in preset  # what the preset documents
    capsys.readouterr()
    run_dir = rows[0]["members"][0]["checkpoint"].split("/checkpoints")[0]
    for bad in ([str(sweep), "--per-row", "--top", "1"], [run_dir, "--per-row"]):
        assert main(["ensemble", *bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--per-row" in err[0]


def test_snapshot_ensemble_counts_every_epoch_once(tmp_path):
    from trainlab.app.ensemble_command import member_checkpoints

    run = fake_job(tmp_path / "s", 0, 0.9, 0.1, best_epoch=2)
    for e in (1, 2, 3):
        (run / "checkpoints" / f"snapshot_e{e:03d}.pt").write_bytes(b"")
    assert [p.name for p in member_checkpoints([str(run)], snapshots=True)] == \
        ["snapshot_e001.pt", "snapshot_e002.pt", "snapshot_e003.pt"]
    (run / "checkpoints" / "snapshot_e002.pt").unlink()  # checkpoint_every=2 could leave the best epoch without one
    assert [p.name for p in member_checkpoints([str(run)], snapshots=True)] == \
        ["best.pt", "snapshot_e001.pt", "snapshot_e003.pt"]
    assert [p.name for p in member_checkpoints([str(run)], snapshots=False)] == ["best.pt"]


# -- optimizer=lbfgs with fp16 ----------------------------------------------------------------------
def test_lbfgs_with_fp16_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="trainer.precision='fp16'.*lbfgs") as err:
        spec_of("optimizer=lbfgs", "trainer.precision=fp16")
    assert "\n" not in str(err.value)
    assert spec_of("optimizer=lbfgs", "trainer.precision=bf16").trainer.precision == "bf16"
