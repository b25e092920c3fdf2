import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.diagnose.gradcheck import band_of, check_gradients


def mlp(activation: type, *extra: nn.Module) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), *extra, activation(), nn.Linear(8, 8), activation(), nn.Linear(8, 3))


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(1)
    return torch.randn(6, 4, generator=generator), torch.randint(0, 3, (6,), generator=generator)


class TanhTimesTwoBackward(torch.autograd.Function):
    """tanh whose backward is off by a factor of 2: the bug the check must catch."""

    @staticmethod
    def forward(ctx, x):
        out = torch.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        (out,) = ctx.saved_tensors
        return 2 * grad_out * (1 - out**2)


class PlantedTanh(nn.Module):
    def forward(self, x):
        return TanhTimesTwoBackward.apply(x)


class Maxout(nn.Module):
    has_kinks = True  # what the real Maxout layer declares

    def __init__(self, n_in: int, n_out: int, pieces: int = 2):
        super().__init__()
        self.n_out, self.pieces = n_out, pieces
        self.linear = nn.Linear(n_in, n_out * pieces)

    def forward(self, x):
        return self.linear(x).view(-1, self.n_out, self.pieces).amax(-1)


def multiclass_hinge(scores, y, margin=1.0):
    correct = scores.gather(1, y[:, None])
    margins = (scores - correct + margin).clamp(min=0)
    margins = margins.masked_fill(F.one_hot(y, scores.shape[1]).bool(), 0)
    return margins.sum(1).mean()


def test_band_boundaries():
    assert [band_of(e) for e in (1e-9, 1e-7, 1e-5, 1e-3, 0.5, float("nan"))] == [
        "excellent", "excellent", "ok with kinks", "suspicious", "wrong", "wrong"]


def test_smooth_tanh_mlp_is_excellent(batch):
    report = check_gradients(mlp(nn.Tanh), nn.CrossEntropyLoss(), *batch)
    assert report.passed and not report.has_kinks
    assert len(report.tensors) == 6
    assert {t.band for t in report.tensors} == {"excellent"}
    assert [t.entries_checked for t in report.tensors] == [20, 8, 20, 8, 20, 3]  # capped at 20
    assert "PASSED" in report.render() and "kinks:" not in report.render()


def test_relu_mlp_passes_and_notes_kinks(batch):
    report = check_gradients(mlp(nn.ReLU), nn.CrossEntropyLoss(), *batch)
    assert report.passed and report.has_kinks
    assert report.kink_sources == ["1 (ReLU)", "3 (ReLU)"]
    assert all(t.worst_rel_error <= 1e-4 for t in report.tensors)
    assert "kinks: 1 (ReLU); 3 (ReLU)" in report.render()


def test_wrong_backward_is_caught_upstream_only(batch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), PlantedTanh(), nn.Linear(8, 3))
    report = check_gradients(model, nn.CrossEntropyLoss(), *batch)
    bands = {t.name: t.band for t in report.tensors}
    assert not report.passed and not report.has_kinks
    # The factor of 2 enters every gradient flowing back through the planted layer ...
    assert bands["0.weight"] == bands["0.bias"] == "wrong"
    worst = report.tensors[0]
    assert worst.analytic == pytest.approx(2 * worst.numeric, rel=1e-6)
    # ... and nothing downstream of it.
    assert bands["2.weight"] == bands["2.bias"] == "excellent"
    assert {t.name for t in report.failing} == {"0.weight", "0.bias"}
    assert "FAILED: 0.weight (wrong), 0.bias (wrong)" in report.render()


def test_multiclass_hinge_loss_passes(batch):
    report = check_gradients(mlp(nn.Tanh), multiclass_hinge, *batch, kinks=True)
    assert report.passed and report.has_kinks
    assert report.kink_sources == ["loss (multiclass_hinge)"]
    assert all(t.worst_rel_error <= 1e-4 for t in report.tensors)


def test_has_kinks_attribute_is_honoured(batch):
    torch.manual_seed(0)
    model = nn.Sequential(Maxout(4, 8), nn.Linear(8, 3))
    report = check_gradients(model, nn.CrossEntropyLoss(), *batch)
    assert report.passed and report.kink_sources == ["0 (Maxout)"]


def test_step_across_a_kink_is_recognised_not_blamed():
    # relu(w * x) at w = 0 sits exactly on the kink: torch's subgradient there is 0,
    # the centered difference sees half the right-hand slope. Nothing is wrong.
    class FunctionalRelu(nn.Module):  # no ReLU module to declare the kink
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return F.relu(self.w * x)

    x, y = torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0], [3.0]])
    report = check_gradients(FunctionalRelu(), nn.MSELoss(), x, y)
    (tensor,) = report.tensors
    assert tensor.kink_straddles == 1 and tensor.band == "unverified"
    assert report.has_kinks and report.kink_sources == ["detected numerically (1 entries straddle a kink)"]
    assert report.passed
    assert "could not be verified" in report.render()


def test_dropout_is_disabled_and_batchnorm_uses_batch_statistics(batch):
    model = mlp(nn.Tanh, nn.BatchNorm1d(8), nn.Dropout(0.5))
    report = check_gradients(model, nn.CrossEntropyLoss(), *batch)
    assert report.passed and {t.band for t in report.tensors} == {"excellent"}
    assert {"1.weight", "1.bias"} <= {t.name for t in report.tensors}  # the batch norm affine


def test_leftover_randomness_is_an_error(batch):
    class Noisy(nn.Module):
        def forward(self, x):
            return x + 0.1 * torch.randn_like(x)

    with pytest.raises(ValueError, match="deterministic"):
        check_gradients(mlp(nn.Tanh, Noisy()), nn.CrossEntropyLoss(), *batch)


def test_callers_model_is_untouched_and_report_serialises(batch):
    model = mlp(nn.Tanh)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    report = check_gradients(model, nn.CrossEntropyLoss(), *batch, max_entries_per_tensor=3)
    assert not model.training
    assert all(p.dtype == torch.float32 and p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(t.entries_checked == 3 for t in report.tensors)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["passed"] is True and data["tensors"][0]["name"] == "0.weight"
    assert data["tensors"][0]["shape"] == [8, 4]


def test_same_seed_same_sample(batch):
    a = check_gradients(mlp(nn.Tanh), nn.CrossEntropyLoss(), *batch, max_entries_per_tensor=2, seed=3)
    b = check_gradients(mlp(nn.Tanh), nn.CrossEntropyLoss(), *batch, max_entries_per_tensor=2, seed=3)
    assert [t.worst_index for t in a.tensors] == [t.worst_index for t in b.tensors]
