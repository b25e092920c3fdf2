"""LiveDiagnostics on a plain model + optimizer loop: the numbers against hand computations."""
import math

import pytest
import torch
from torch import nn

from trainlab.diagnose.live import LiveDiagnostics


def mlp(activation=nn.ReLU) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), activation(), nn.Linear(16, 8), activation(), nn.Linear(8, 3))


def batch(seed=1, n=32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


def train(model, diag, steps, lr=0.1, optimizer=None, record=None):
    """The loop the engine runs, with the calls where the engine makes them."""
    optimizer = optimizer or torch.optim.SGD(model.parameters(), lr=lr)
    x, y = batch()
    for step in range(steps):
        sampled = diag.wants(step)
        before = [p.detach().clone() for p in model.parameters()]
        if sampled:
            diag.before_step()
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        if sampled:
            diag.after_step()
            if record is not None:
                record.append((before, [p.detach().clone() for p in model.parameters()],
                               [p.grad.clone() for p in model.parameters()]))
    return optimizer


def test_update_ratio_and_grad_norm_match_a_hand_computation():
    model = mlp()
    diag = LiveDiagnostics(model, "light", every=3)
    samples = []
    train(model, diag, steps=7, optimizer=torch.optim.Adam(model.parameters(), lr=1e-2), record=samples)
    assert len(samples) == 3  # steps 0, 3 and 6
    row = diag.collect()
    weights = [i for i, p in enumerate(model.parameters()) if p.dim() > 1]  # 0.weight, 2.weight, 4.weight
    for layer, i in zip(["0", "2", "4"], weights):
        ratios = [(after[i] - before[i]).norm() / before[i].norm() for before, after, _ in samples]
        grads = [g[i].norm() for _, _, g in samples]
        assert row[f"diag/{layer}.update_ratio"] == pytest.approx(float(sum(ratios) / 3), rel=1e-5)
        assert row[f"diag/{layer}.grad_norm"] == pytest.approx(float(sum(grads) / 3), rel=1e-5)
    # Adam's first steps move each weight by ~lr: the ratio is lr * sqrt(n) / ||w||, far above 1e-3
    assert row["diag/0.update_ratio"] > 1e-2
    assert not any(k.endswith((".act_mean", ".act_std", ".dead")) for k in row)  # light: no activation stats


def test_collect_resets_and_keeps_its_columns():
    model = mlp()
    diag = LiveDiagnostics(model, "full", every=1)
    assert all(math.isnan(v) for v in diag.collect().values())  # nothing sampled yet
    train(model, diag, steps=2)
    first = diag.collect()
    second = diag.collect()
    assert list(first) == list(second) == diag.columns()
    assert all(math.isfinite(v) for v in first.values())
    assert all(math.isnan(v) for v in second.values())
    assert not model[1]._forward_hooks  # hooks live only during sampled steps


def test_off_samples_nothing_and_reports_nothing():
    diag = LiveDiagnostics(mlp(), "off", every=1)
    assert not any(diag.wants(s) for s in range(20))
    assert diag.collect() == {} and diag.columns() == []
    with pytest.raises(ValueError, match="level"):
        LiveDiagnostics(mlp(), "heavy")


def test_dead_relu_layer_and_activation_statistics():
    model = mlp()
    with torch.no_grad():
        model[0].bias.fill_(-100.0)  # no input can switch these units on
    seen = {}
    model[3].register_forward_hook(lambda m, i, out: seen.setdefault("out", out.detach().clone()))
    diag = LiveDiagnostics(model, "full", every=5)
    train(model, diag, steps=1)
    row = diag.collect()
    assert row["diag/1.dead"] == 1.0
    assert row["diag/1.act_mean"] == 0.0 and row["diag/1.act_std"] == 0.0
    out = seen["out"]  # the second ReLU, fed only by biases: its stats as computed by hand
    assert row["diag/3.act_mean"] == pytest.approx(float(out.mean()), abs=1e-7)
    assert row["diag/3.act_std"] == pytest.approx(float(out.std()), abs=1e-7)
    assert row["diag/3.dead"] == pytest.approx(float((out.amax(dim=0) <= 0).float().mean()))
    assert row["diag/0.update_ratio"] == 0.0  # dead units pass no gradient to their weights
    flags = diag.flags(row)
    assert any(f.startswith("1: 100% of units are dead") for f in flags)
    assert any(f.startswith("0: update/weight ratio 0.0e+00 < 1e-05") for f in flags)


def test_saturated_tanh_is_measured_and_flagged():
    model = mlp(nn.Tanh)
    with torch.no_grad():
        model[0].weight.mul_(100.0)
    diag = LiveDiagnostics(model, "full", every=1)
    x, _ = batch()
    expected = (torch.tanh(model[0](x)).abs() > 0.99).float().mean()
    train(model, diag, steps=1)
    row = diag.collect()
    assert row["diag/1.saturated"] == pytest.approx(float(expected))
    assert row["diag/1.saturated"] > 0.8
    assert any(f.startswith("1:") and "saturated" in f for f in diag.flags(row))


def test_flags_name_layers_whose_steps_are_too_large_or_too_small():
    hot, cold = mlp(), mlp()
    hot_diag, cold_diag = LiveDiagnostics(hot, "light"), LiveDiagnostics(cold, "light")
    train(hot, hot_diag, steps=1, lr=10.0)
    train(cold, cold_diag, steps=1, lr=1e-7)
    hot_row, cold_row = hot_diag.collect(), cold_diag.collect()
    assert all(hot_row[f"diag/{n}.update_ratio"] > 1e-2 for n in "024")
    assert all(cold_row[f"diag/{n}.update_ratio"] < 1e-5 for n in "024")
    assert sorted(f.split(":")[0] for f in hot_diag.flags(hot_row)) == ["0", "2", "4"]
    assert all("> 1e-02" in f for f in hot_diag.flags(hot_row))
    assert all("< 1e-05" in f for f in cold_diag.flags(cold_row))
    healthy = {"diag/0.update_ratio": 1e-3, "diag/1.dead": 0.2, "diag/3.saturated": 0.1, "val_acc": 0.9,
               "diag/2.update_ratio": math.nan}
    assert LiveDiagnostics.flags(healthy) == []


def test_diagnostics_do_not_change_training():
    runs = {}
    for level in ("off", "full"):
        model = mlp()
        train(model, LiveDiagnostics(model, level, every=1), steps=5,
              optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
        runs[level] = [p.detach().clone() for p in model.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(runs["off"], runs["full"]))


def test_no_host_read_until_collect(monkeypatch):
    model = mlp()
    diag = LiveDiagnostics(model, "full", every=1)
    train(model, diag, steps=1)  # allocate the buffers first

    def host_read(*_args, **_kwargs):
        raise AssertionError("a diagnostics step read a device value back to the host")

    with monkeypatch.context() as m:
        for name in ("item", "tolist", "__float__", "__bool__", "numpy"):
            m.setattr(torch.Tensor, name, host_read)
        x, y = batch()
        loss = nn.functional.cross_entropy(model(x), y)
        diag.before_step()
        model(x)
        loss.backward()
        diag.after_step()
    assert diag._samples == 2
    assert math.isfinite(diag.collect()["diag/0.grad_norm"])


def test_plot_draws_the_recorded_rows(tmp_path):
    from trainlab.diagnose.live_plot import plot_diagnostics

    model = mlp()
    diag = LiveDiagnostics(model, "full", every=2)
    rows = []
    for evaluation in range(3):
        train(model, diag, steps=4)
        rows.append({"step": 4 * (evaluation + 1), **diag.collect()})
    path = plot_diagnostics(rows, tmp_path / "diagnostics.png")
    assert path.is_file() and path.stat().st_size > 10_000
    assert plot_diagnostics([{"step": 1, "val_acc": 0.5}], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
