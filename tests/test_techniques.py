"""Early stopping, weight averaging (EMA), test-time augmentation, ensembles, transfer learning."""
import json

import pytest
import torch
from torch import nn

from conftest import run_tiny
from test_resume import assert_same_tensors, final_state, metrics_without_time
from trainlab.engine.ema import EMA
from trainlab.engine.ensemble import ensemble
from trainlab.app.ensemble_command import member_checkpoints


def test_early_stopping_records_the_epoch_and_tests_the_best_checkpoint(tmp_path):
    # lr so high the validation accuracy soon stops improving
    s = run_tiny(tmp_path, ["trainer.epochs=30", "trainer.early_stop.patience=2", "optimizer=sgd", "optimizer.lr=3.0"])
    assert s["stopped_early"] and s["epochs_run"] < 30
    assert s["epochs_run"] == s["best"]["epoch"] + 2  # patience evaluations after the best one
    best = torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)
    assert best["epoch"] == s["best"]["epoch"]


def test_early_stopping_state_survives_resume(tmp_path):
    args = ["trainer.epochs=30", "trainer.early_stop.patience=3", "optimizer=sgd", "optimizer.lr=3.0"]
    whole = run_tiny(tmp_path / "a", args)
    stop_at = max(1, whole["epochs_run"] - 2)
    run_tiny(tmp_path / "b", [*args, f"trainer.stop_after={stop_at}"])
    resumed = run_tiny(tmp_path / "b", [*args, "resume=true"])
    assert resumed["epochs_run"] == whole["epochs_run"] and resumed["stopped_early"]


def test_ema_averages_with_warmup_and_copies_buffers():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = EMA(model, decay=0.9, warmup=True)
    start = ema.model[0].weight.clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].running_mean.fill_(5.0)
    ema.update()  # decay_0 = min(0.9, 1/10) = 0.1
    assert torch.allclose(ema.model[0].weight, 0.1 * start + 0.9 * (start + 1))
    assert torch.equal(ema.model[1].running_mean, torch.full((2,), 5.0))
    ema.update()  # decay_1 = 2/11
    d = 2 / 11
    assert torch.allclose(ema.model[0].weight, d * (0.1 * start + 0.9 * (start + 1)) + (1 - d) * (start + 1))
    no_warm = EMA(model, decay=0.9, warmup=False)
    assert no_warm.current_decay() == 0.9


def test_ema_metrics_reported_and_resumed_bit_identical(tmp_path):
    args = ["trainer.epochs=3", "trainer.ema.decay=0.95", "regularizer=dropout"]
    s = run_tiny(tmp_path / "a", args)
    assert {"ema_acc", "ema_loss"} <= set(s["test"])
    header = (tmp_path / "a" / "metrics.csv").read_text().splitlines()[0]
    assert "val_acc_ema" in header
    run_tiny(tmp_path / "b", [*args, "trainer.stop_after=1"])
    run_tiny(tmp_path / "b", [*args, "resume=true"])
    assert_same_tensors(final_state(tmp_path / "a")["ema"], final_state(tmp_path / "b")["ema"])
    assert metrics_without_time(tmp_path / "a") == metrics_without_time(tmp_path / "b")


@pytest.mark.parametrize("mode", ["flip", "crop"])
def test_tta_is_reported_beside_the_plain_metric(tmp_path, mode):
    s = run_tiny(tmp_path, [f"trainer.tta={mode}", "trainer.epochs=2"])
    assert s["test"]["tta"] == mode and 0 <= s["test"]["tta_acc"] <= 1
    assert "acc" in s["test"]


def test_tta_on_flat_data_is_a_config_error(tmp_path):
    from trainlab.errors import ConfigError

    with pytest.raises(ConfigError, match="trainer.tta"):
        run_tiny(tmp_path, ["dataset=spirals", "trainer.tta=flip"])


def test_ensemble_accuracy_on_a_toy_case(tmp_path, monkeypatch):
    """Three members whose argmax is right on different examples: the average is computed, not guessed."""
    from trainlab.engine import ensemble as ens

    for seed in range(3):
        run_tiny(tmp_path / f"run{seed}", [f"seed={seed}", "trainer.epochs=2"])
    paths = member_checkpoints([str(tmp_path)], snapshots=False)
    assert len(paths) == 3
    # replace the members' predictions by hand-made probabilities over 4 test examples
    y = torch.tensor([0, 1, 2, 3])
    probs = [torch.tensor([[.6, .4, 0, 0], [.1, .0, .9, 0], [0, 0, .6, .4], [.5, 0, 0, .5]]),
             torch.tensor([[.4, .6, 0, 0], [.0, .8, .2, 0], [0, 0, .6, .4], [.6, 0, 0, .4]]),
             torch.tensor([[.7, .3, 0, 0], [.0, .6, .4, 0], [0, .7, .3, 0], [.3, 0, 0, .7]])]
    calls = iter(probs)
    monkeypatch.setattr(ens, "member_probabilities", lambda trained, x: next(calls))

    class FakeSplits:
        input_shape, num_classes = (1, 8, 8), 4
        test = type("S", (), {"x": torch.zeros(4, 1, 8, 8), "y": y})()

    monkeypatch.setattr(ens, "load_splits", lambda cfg: FakeSplits)
    monkeypatch.setattr(ens, "load_trained", lambda *a, **k: None)
    result = ensemble(paths)
    assert [m["test_acc"] for m in result["members"]] == [0.5, 0.5, 0.75]
    # by hand, mean probabilities: ex0 [.57,.43] right; ex1 [.03,.47,.50] wrong (class 2);
    # ex2 [0,.23,.50,.27] right; ex3 [.47,0,0,.53] right
    assert result["ensemble_test_acc"] == pytest.approx(0.75)


def test_ensemble_command_on_real_runs_with_snapshots(tmp_path, capsys):
    from trainlab.app.cli import main

    run_tiny(tmp_path / "r", ["trainer.epochs=2", "trainer.snapshots=true"])
    assert main(["ensemble", str(tmp_path / "r"), "--snapshots", "--out", str(tmp_path / "e.json")]) == 0
    out = json.loads((tmp_path / "e.json").read_text())
    # one member per epoch: the two snapshots (best.pt is one of them, not a third member)
    assert out["n"] == 2 and 0 <= out["ensemble_test_acc"] <= 1
    assert [m["checkpoint"].rsplit("/", 1)[-1] for m in out["members"]] == ["snapshot_e001.pt", "snapshot_e002.pt"]
    assert "ensemble of 2" in capsys.readouterr().out


def test_transfer_loads_freezes_and_replaces_the_head(tmp_path):
    src = run_tiny(tmp_path / "src", ["trainer.epochs=2", "arch.width=[32]"])
    best = tmp_path / "src" / "checkpoints" / "best.pt"
    source = torch.load(best, weights_only=True)["model"]
    # 3 spiral classes vs 10 digits classes: the head is replaced, the hidden layer loaded then frozen
    s = run_tiny(tmp_path / "dst", ["dataset=synthetic", "dataset.shape=[1,8,8]", "dataset.classes=3",
                                    "dataset.train_size=120", "dataset.subset=null", "arch.width=[32]",
                                    f"transfer.weights={best}", "transfer.freeze=[backbone]"])
    assert s["status"] == "completed"
    dst = torch.load(tmp_path / "dst" / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert torch.equal(dst["1.weight"], source["1.weight"])  # frozen: unchanged by training
    assert dst["3.weight"].shape == (3, 32)


def test_transfer_backbone_lr_multiplier_makes_param_groups(tmp_path):
    from conftest import compose_cfg
    from trainlab.config import validate
    from trainlab.engine.assemble import assemble

    run_tiny(tmp_path / "src", ["trainer.epochs=1"])
    spec = validate(compose_cfg([f"transfer.weights={tmp_path / 'src' / 'checkpoints' / 'best.pt'}",
                                 "transfer.backbone_lr_mult=0.1", "optimizer=sgd", "optimizer.lr=0.5"]))
    c = assemble(spec, torch.device("cpu"))
    lrs = sorted({g["lr"] for g in c.optimizer.param_groups})
    assert lrs == pytest.approx([0.05, 0.5])
    head = [g for g in c.optimizer.param_groups if g["lr"] == 0.5]
    assert sum(p.numel() for g in head for p in g["params"]) == 256 * 10 + 10


def test_transfer_bad_inputs(tmp_path):
    from trainlab.errors import ConfigError

    with pytest.raises(ConfigError, match="transfer.freeze"):
        run_tiny(tmp_path / "x", ["transfer.freeze=[nothing.matches.*]"])
    with pytest.raises(ConfigError, match="checkpoint"):
        run_tiny(tmp_path / "y", [f"transfer.weights={tmp_path / 'missing.pt'}"])
