"""`trainlab check`: each sanity check passes on a healthy config and fails on a planted fault."""
import json
import math

import pytest
import torch

from trainlab.app.cli import main
from trainlab.app.check_command import run_checks
from trainlab.app.diagnose_setup import assemble_run, load_spec

SMALL_INIT = ["init=normal", "init.std=0.01"]  # tiny weights: the untrained model guesses uniformly


@pytest.fixture(scope="module")
def healthy():
    spec = load_spec(SMALL_INIT)
    return spec, {r.name: r for r in run_checks(spec)}


def test_initial_loss_is_ln_c_with_small_weights(healthy):
    _, results = healthy
    r = results["initial loss"]
    assert r.passed
    assert r.numbers["expected"] == pytest.approx(math.log(10))
    assert r.numbers["measured"] == pytest.approx(math.log(10), rel=1e-3)


def test_regularization_raises_the_loss_by_the_penalty(healthy):
    spec, results = healthy
    r = results["regularization raises the loss"]
    assert r.passed and r.numbers["penalties"] == ["l2"]  # none configured: l2 stands in
    totals = r.numbers["totals"]
    assert all(b > a for a, b in zip(totals, totals[1:]))
    c, _ = assemble_run(spec)  # the same seeded weights
    squares = sum(float((p.detach() ** 2).sum()) for p in c.model.parameters() if p.dim() > 1)
    # strength 1e-4 turned up 100x: the loss rises by 1e-2 * sum(w^2)
    assert totals[-1] - totals[0] == pytest.approx(1e-2 * squares, rel=1e-4)


def test_overfits_twenty_examples(healthy):
    _, results = healthy
    r = results["overfit 20 examples"]
    assert r.passed
    n = r.numbers
    assert 0 < n["steps"] <= 500 and len(n["losses"]) == n["steps"] + 1
    assert n["accuracies"][-1] == 1.0 and n["losses"][-1] <= 0.01 * math.log(10)
    assert n["losses"][0] == pytest.approx(math.log(10), rel=1e-2)


def test_hinge_initial_loss_is_c_minus_one_times_the_margin():
    results = run_checks(load_spec([*SMALL_INIT, "loss=hinge", "loss.margin=2.0"]), max_steps=1)
    r = results[0]
    assert r.passed and r.numbers["expected"] == 18.0
    assert r.numbers["measured"] == pytest.approx(18.0, rel=1e-2)


def test_large_head_weights_fail_the_initial_loss_check(tmp_path, capsys):
    assert main(["check", "init=normal", "init.std=1.0", "--max-steps", "5", "--out", str(tmp_path)]) == 1
    record = json.loads((tmp_path / "check.json").read_text())
    initial = record["checks"][0]
    assert not record["passed"] and not initial["passed"]
    assert initial["numbers"]["measured"] > 10 * math.log(10)  # confident random guesses
    out = capsys.readouterr().out
    assert "FAIL" in out and "FAILED: initial loss" in out
    assert "+---" in out  # not a terminal: a plain ASCII table


def test_a_penalty_with_the_wrong_sign_is_caught(monkeypatch):
    from trainlab.optim.regularizers import L2Penalty

    monkeypatch.setattr(L2Penalty, "term", lambda self, w: -(w * w).sum())
    results = run_checks(load_spec([*SMALL_INIT, "regularizer=l2", "regularizer.l2.strength=0.001"]), max_steps=1)
    r = results[1]
    assert not r.passed
    assert r.numbers["base_strengths"] == {"l2": 0.001}
    assert r.numbers["totals"][-1] < r.numbers["totals"][0]


def test_an_elastic_net_penalty_is_the_one_turned_up():
    results = run_checks(load_spec(["regularizer=[elastic_net,dropout]"]), max_steps=1)
    r = results[1]
    assert r.passed and r.numbers["penalties"] == ["elastic_net"]


def test_too_few_steps_fail_the_overfit_check():
    r = run_checks(load_spec(SMALL_INIT), max_steps=3)[2]
    assert not r.passed and r.numbers["steps"] is None
    assert len(r.numbers["losses"]) == 4  # the state before each of 3 steps, and after the last


def test_the_configured_optimizer_overfits_too():
    r = run_checks(load_spec(["optimizer=adam", "optimizer.lr=0.01"]), use_optimizer=True)[2]
    assert r.passed and r.numbers["steps"] < 100


def test_command_writes_its_folder_and_passes(tmp_path, capsys):
    assert main(["check", *SMALL_INIT, "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "overfit.png").stat().st_size > 10_000
    record = json.loads((tmp_path / "c" / "check.json").read_text())
    assert record["passed"] and [c["passed"] for c in record["checks"]] == [True, True, True]
    assert "all checks passed" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--tolerance", "abc"], "error: --tolerance='abc' is not valid: invalid float value: 'abc'"),
    (["--examples", "0"], "error: --examples='0' is not valid: a positive integer"),
    (["--bogus"], "error: check='--bogus' is not valid: unknown option; valid: --help, --out, --tolerance"),
    (["optimizer.lr=-1"], "error: optimizer.lr=-1.0 is not valid: a positive learning rate"),
    (["activation=relu,tanh"], "is not valid: one configuration; sweeps (a,b) are for `trainlab train -m`"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    assert main(["check", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
