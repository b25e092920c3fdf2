"""trainer.threads=auto: the process's share of the cores, and no more threads than a step keeps busy."""
import json

import pytest
import torch
from torch import nn

from conftest import run_tiny

from trainlab.engine.step_size import step_flops
from trainlab.engine.threads import FLOPS_PER_THREAD, threads_for_step


def test_a_linear_and_a_convolution_are_counted_from_their_shapes():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
    conv = 2 * (3 * 3 * 3) * (8 * 4 * 4)  # a multiply-add per weight tap per output element
    linear = 2 * 128 * 10
    assert step_flops(model, torch.zeros(1, 3, 4, 4), batch_size=32) == 3 * (conv + linear) * 32


def test_counting_leaves_the_model_and_the_random_streams_as_they_were():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(4, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    example = torch.randn(1, 4)
    rng = torch.random.get_rng_state()
    step_flops(model, example, batch_size=8)
    assert model.training and torch.equal(rng, torch.random.get_rng_state())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model._forward_hooks and not model[0]._forward_hooks


@pytest.mark.parametrize("share, flops, threads", [
    (2, 0.03e9, 1), (2, FLOPS_PER_THREAD - 1, 1), (2, FLOPS_PER_THREAD, 2), (2, 50 * FLOPS_PER_THREAD, 2),
    (8, 3.5 * FLOPS_PER_THREAD, 4), (1, 50 * FLOPS_PER_THREAD, 1)])
def test_auto_threads_grow_with_the_step_up_to_the_share(share, flops, threads):
    assert threads_for_step(share, flops) == threads


def test_a_run_records_the_threads_auto_chose(tmp_path):
    summary = run_tiny(tmp_path / "run", ["trainer.threads=auto"])
    assert summary["threads"] == 1  # the digits MLP's step is far below one thread's worth
