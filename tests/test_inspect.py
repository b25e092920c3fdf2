"""The initialization study, in numbers: 10 layers x 500 units, unit-Gaussian input."""
import pytest
import torch
from torch import nn

from trainlab.diagnose.inspect_layers import layer_statistics, render_table, save_histograms

DEPTH, WIDTH, BATCH = 10, 500, 500


def deep_mlp(activation: type, init_weight, head: bool = False) -> nn.Sequential:
    torch.manual_seed(0)
    layers = []
    for _ in range(DEPTH):
        linear = nn.Linear(WIDTH, WIDTH)
        init_weight(linear.weight)
        nn.init.zeros_(linear.bias)
        layers += [linear, activation()]
    if head:
        layers.append(nn.Linear(WIDTH, 10))
    return nn.Sequential(*layers)


def normal(std):
    return lambda w: nn.init.normal_(w, std=std)


@pytest.fixture(scope="module")
def x():
    return torch.randn(BATCH, WIDTH, generator=torch.Generator().manual_seed(1))


def stds(stats):
    return [s.std for s in stats]


def test_tiny_weights_make_tanh_activations_vanish(x):
    stats = layer_statistics(deep_mlp(nn.Tanh, normal(0.01)), x)
    assert [s.name for s in stats] == [str(i) for i in range(1, 2 * DEPTH, 2)]
    # Each layer multiplies the spread by about 0.01 * sqrt(500) = 0.22.
    assert all(later < 0.5 * earlier for earlier, later in zip(stds(stats), stds(stats)[1:]))
    assert stats[-1].std < 1e-3
    assert stats[-1].frac_saturated == 0.0


def test_unit_weights_saturate_tanh(x):
    stats = layer_statistics(deep_mlp(nn.Tanh, normal(1.0)), x)
    assert all(s.frac_saturated > 0.5 for s in stats[1:])
    assert all(s.std > 0.9 for s in stats)  # almost every value is close to +-1


def test_xavier_keeps_tanh_alive(x):
    stats = layer_statistics(deep_mlp(nn.Tanh, nn.init.xavier_normal_), x)
    assert 0.1 < stats[-1].std < 0.9
    assert all(s.frac_saturated < 0.05 for s in stats)
    assert all(abs(s.mean) < 0.05 for s in stats)


def test_relu_shrinks_with_xavier_but_not_with_kaiming(x):
    xavier = stds(layer_statistics(deep_mlp(nn.ReLU, nn.init.xavier_normal_), x))
    # ReLU zeroes half the signal, so Xavier's variance halves at every layer.
    assert all(later < 0.85 * earlier for earlier, later in zip(xavier, xavier[1:]))
    assert xavier[-1] / xavier[0] < 0.1

    kaiming_stats = layer_statistics(deep_mlp(nn.ReLU, lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu")), x)
    kaiming = stds(kaiming_stats)
    assert 0.5 < kaiming[-1] / kaiming[0] < 2
    assert all(0.4 < s.frac_dead < 0.6 for s in kaiming_stats)  # half the outputs sit at zero
    assert all(s.frac_saturated is None for s in kaiming_stats)


def test_gradients_vanish_towards_the_input_with_tiny_weights(x):
    y = torch.randint(0, 10, (BATCH,), generator=torch.Generator().manual_seed(2))
    stats = layer_statistics(deep_mlp(nn.Tanh, normal(0.01), head=True), x, y, nn.CrossEntropyLoss())
    grads = [s.grad_std for s in stats]
    assert all(earlier < 0.5 * later for earlier, later in zip(grads, grads[1:]))
    assert grads[0] < 1e-5 * grads[-1]  # about 0.22 ** 9


def test_dead_relu_units_are_counted():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    with torch.no_grad():
        model[0].bias[:2] = -100.0  # two units can never switch on
    (stats,) = layer_statistics(model, torch.randn(64, 3))
    assert stats.frac_dead_units == 0.5
    assert stats.frac_dead >= 0.5


def test_sigmoid_saturation_counts_both_ends():
    model = nn.Sequential(nn.Sigmoid())
    (stats,) = layer_statistics(model, torch.tensor([[-10.0, 0.0, 10.0, 0.5]]), layer_types=(nn.Sigmoid,))
    assert stats.frac_saturated == 0.5


def test_shared_and_custom_activations_and_layer_types():
    class Square(nn.Module):
        is_activation = True

        def forward(self, x):
            return x * x

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.act, self.sq = nn.Linear(4, 4), nn.Linear(4, 4), nn.Tanh(), Square()

        def forward(self, x):
            return self.sq(self.act(self.b(self.act(self.a(x)))))

    net, x = Net(), torch.randn(8, 4)
    assert [s.name for s in layer_statistics(net, x)] == ["act[call 1]", "act[call 2]", "sq"]
    linear = layer_statistics(net, x, layer_types=(nn.Linear,))
    assert [(s.name, s.kind, s.frac_saturated, s.frac_dead) for s in linear] == [
        ("a", "Linear", None, None), ("b", "Linear", None, None)]
    with pytest.raises(ValueError, match="no activation modules"):
        layer_statistics(nn.Sequential(nn.Linear(4, 4)), x)


def test_model_is_left_as_it_was():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stats = layer_statistics(model, torch.randn(16, 4) + 5, torch.zeros(16, dtype=torch.long), nn.CrossEntropyLoss())
    assert stats[0].grad_std > 0
    # Train mode: batch norm used the batch statistics, so the +5 shift is gone.
    assert abs(stats[0].mean - 0.4) < 0.2
    assert not any(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_table_and_histograms(x, tmp_path):
    stats = layer_statistics(deep_mlp(nn.Tanh, nn.init.xavier_normal_), x[:64])
    table = render_table(stats)
    assert table.count("Tanh") == DEPTH
    assert f"{stats[-1].std:.3e}" in table
    assert all(len(s.sample) == min(4096, 64 * WIDTH) for s in stats)
    assert stats[0].to_dict()["shape"] == [64, WIDTH] and "sample" not in stats[0].to_dict()

    path = save_histograms(stats, tmp_path / "plots" / "activations.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
