import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from trainlab.diagnose.lr_find import lr_range_test, save_plot, steepest_descent_lr

SWEEP = dict(lr_min=1e-4, lr_max=1e3, num_steps=100)


def separable_problem(seed: int = 0):
    """Labels from a random hyperplane: a small MLP can fit them, so the loss falls, then explodes."""
    generator = torch.Generator().manual_seed(seed)
    normal = torch.randn(10, generator=generator)

    def batches():
        while True:
            x = torch.randn(64, 10, generator=generator)
            yield x, (x @ normal > 0).long()

    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 2))
    return model, batches()


def momentum_sgd(params, lr):
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


@pytest.fixture(scope="module")
def run():
    model, batches = separable_problem()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = lr_range_test(model, momentum_sgd, batches, nn.CrossEntropyLoss(), **SWEEP)
    return model, before, result


def test_stops_once_the_loss_explodes(run):
    _, _, result = run
    assert result.stopped_early
    assert len(result.lrs) < SWEEP["num_steps"]
    assert result.diverged_lr == result.lrs[-1] < SWEEP["lr_max"]
    assert result.smoothed[-1] > 4 * min(result.smoothed)  # the stopping rule, seen from outside
    assert all(s <= 4 * min(result.smoothed[: i + 1]) for i, s in enumerate(result.smoothed[:-1]))


def test_suggestion_lies_inside_the_useful_range(run):
    _, _, result = run
    assert SWEEP["lr_min"] < result.suggested_lr < result.diverged_lr
    assert result.suggested_lr < result.min_loss_lr < result.diverged_lr
    assert result.alternative_lr == pytest.approx(result.min_loss_lr / 10)
    # At the suggestion the loss is still falling steeply, well before its minimum.
    i = result.lrs.index(result.suggested_lr)
    assert result.smoothed[i - 5] - result.smoothed[i + 5] > 0.1 * (result.smoothed[0] - min(result.smoothed))


def test_lr_grows_geometrically_and_loss_is_smoothed(run):
    _, _, result = run
    lrs = np.array(result.lrs)
    assert lrs[0] == SWEEP["lr_min"]
    assert np.all(np.diff(lrs) > 0)
    assert np.allclose(lrs[1:] / lrs[:-1], (1e7) ** (1 / 99))
    assert result.smoothed[0] == pytest.approx(result.losses[0])  # bias correction: no pull towards 0
    assert np.std(np.diff(result.smoothed)) < np.std(np.diff(result.losses))


def test_model_weights_are_restored(run):
    model, before, _ = run
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert model.training


def test_plot_and_report(run, tmp_path):
    _, _, result = run
    path = save_plot(result, tmp_path / "lr" / "lr_find.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "loss exploded" in result.render()
    assert f"{result.suggested_lr:.2e}" in result.render()
    data = json.loads(json.dumps(result.to_dict()))
    assert data["stopped_early"] is True and len(data["lrs"]) == len(result.lrs)


def test_finite_batches_are_cycled_and_without_smoothing_the_curve_is_raw():
    model, stream = separable_problem()
    fixed = [next(stream) for _ in range(3)]

    class CountingList(list):
        passes = 0

        def __iter__(self):
            CountingList.passes += 1
            return super().__iter__()

    result = lr_range_test(model, momentum_sgd, CountingList(fixed), nn.CrossEntropyLoss(),
                           lr_min=1e-5, lr_max=1e-3, num_steps=10, smoothing=0.0)
    assert not result.stopped_early and len(result.lrs) == 10 and result.lrs[-1] == pytest.approx(1e-3)
    assert CountingList.passes == 4  # 10 steps over 3 batches, restarted each time
    assert result.smoothed == result.losses

    one_shot = lr_range_test(model, momentum_sgd, iter(fixed), nn.CrossEntropyLoss(),
                             lr_min=1e-5, lr_max=1e-3, num_steps=10, smoothing=0.0)
    assert one_shot.losses == pytest.approx(result.losses)  # replayed in the same order


def test_non_finite_loss_stops_the_test_and_restores_the_model():
    model, batches = separable_problem()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = lr_range_test(model, lambda p, lr: torch.optim.SGD(p, lr=lr), batches, nn.CrossEntropyLoss(),
                           lr_min=1e-3, lr_max=1e30, num_steps=60, diverge_factor=1e300)
    assert result.stopped_early and all(math.isfinite(v) for v in result.smoothed)
    assert result.diverged_lr > result.lrs[-1]  # the non-finite step itself is not recorded
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_steepest_descent_on_a_known_curve():
    lrs = np.geomspace(1e-4, 1, 41).tolist()
    # A sigmoid step in log lr centred at 1e-2, then a rise: steepest point at 1e-2.
    log_lr = np.log10(lrs)
    loss = (1 / (1 + np.exp(4 * (log_lr + 2))) + np.clip(log_lr + 0.5, 0, None)).tolist()
    assert steepest_descent_lr(lrs, loss, skip=1, window=2) == pytest.approx(1e-2)
    assert steepest_descent_lr(lrs, sorted(loss)) is None  # never falls


def test_bad_arguments_are_refused():
    model, batches = separable_problem()
    with pytest.raises(ValueError, match="lr_min < lr_max"):
        lr_range_test(model, momentum_sgd, batches, nn.CrossEntropyLoss(), lr_min=1.0, lr_max=0.1)
    with pytest.raises(ValueError, match="yielded nothing"):
        lr_range_test(model, momentum_sgd, [], nn.CrossEntropyLoss())
