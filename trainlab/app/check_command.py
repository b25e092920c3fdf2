"""`trainlab check [overrides]`: three sanity checks to pass before training for real.

    initial loss       At initialization, with regularization off, a network that has
                       learned nothing should be unsure: the loss on a batch is the
                       loss of a uniform guess, `loss_fn.initial_loss(C)` (ln C for
                       cross-entropy, (C-1)*margin for hinge), within --tolerance
                       (relative). Large weights in the classifier make confident
                       random guesses and a higher loss; that is what this catches.
    regularization     Turning the configured penalty (l2 when none is configured)
    raises the loss    up must raise the initial total loss; a penalty that is not
                       added, has the wrong sign, or sees no weights does not.
    overfit a tiny     With regularization and augmentation off, plain SGD (or the
    subset             configured optimizer with --use-optimizer) must fit --examples
                       training examples perfectly: 100% accuracy and a loss below 1%
                       of the initial one within --max-steps full-batch steps. A model,
                       loss or data pipeline that cannot memorize 20 examples will
                       not learn 50,000.

Exit code 1 when a check fails. The table is printed; check.json and overfit.png
(the loss curve of the third check) go to --out. The flags are parsed in entry.py,
which imports this module (and torch) only after they are.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import torch
from matplotlib.figure import Figure
from rich.table import Table

from trainlab.app.diagnose_setup import assemble_run, out_dir, print_table, sample_batch, write_json

# "Near-zero" for the overfit check, as a fraction of the chance-level loss:
# 0.01 * ln(10) = 0.023 for 10-class cross-entropy, i.e. ~98% probability on every right class.
NEAR_ZERO = 0.01
# Penalty strength used when the configured one is 0, and the factors it is turned up by.
DEFAULT_STRENGTH = 1e-4
STRENGTH_FACTORS = (0.0, 1.0, 10.0, 100.0)


@dataclass
class CheckResult:
    name: str
    passed: bool
    expected: str
    measured: str
    note: str
    numbers: dict = field(default_factory=dict)  # the raw values, for check.json and tests


def initial_loss_check(model, loss_fn, x, y, num_classes: int, tolerance: float) -> CheckResult:
    """The data loss at initialization against the loss of a uniform guess."""
    with torch.no_grad():
        scores = model(x).float()
        measured = float(loss_fn(scores, y))
    expected = loss_fn.initial_loss(num_classes)
    rel = abs(measured - expected) / expected
    spread = float(scores.std()) if scores.numel() > 1 else 0.0
    passed = rel <= tolerance
    if passed:
        note = f"scores std {spread:.2g}: the untrained model guesses uniformly"
    elif measured > expected:
        note = (f"scores std {spread:.2g}: confident random guesses; the classifier's initial weights are "
                "too large (scale the last layer down, e.g. a smaller init.std or init.gain)")
    else:
        note = "below chance level at initialization: is the loss averaged, are the labels leaking into the input?"
    return CheckResult("initial loss", passed, f"{expected:.4f} (±{100 * tolerance:g}%)",
                       f"{measured:.4f} ({100 * (measured - expected) / expected:+.1f}%)", note,
                       {"expected": expected, "measured": measured, "relative_error": rel,
                        "tolerance": tolerance, "scores_std": spread})


def regularization_check(model, loss_fn, x, y, selected: dict) -> CheckResult:
    """The initial total loss (data + penalty) at increasing penalty strengths must rise."""
    from trainlab.optim.regularizers import REGULARIZERS, Penalty, build_penalties, penalized_weights
    from trainlab.schemas.regularizer import L2Schema

    def is_penalty(name):  # constraints (maxnorm, weight_decay) and dropout do not enter the loss
        build = REGULARIZERS[name].build
        return isinstance(build, type) and issubclass(build, Penalty)

    penalties = {name: cfg for name, cfg in selected.items() if is_penalty(name)}
    if not penalties:
        penalties = {"l2": L2Schema(strength=DEFAULT_STRENGTH)}
    base = {name: cfg.strength or DEFAULT_STRENGTH for name, cfg in penalties.items()}
    weights = penalized_weights(model)
    with torch.no_grad():
        data_loss = float(loss_fn(model(x).float(), y))
        totals = []
        for factor in STRENGTH_FACTORS:
            scaled = {name: replace(cfg, strength=base[name] * factor) for name, cfg in penalties.items()}
            penalty = sum(float(p(weights)) for p in build_penalties(scaled, model))
            totals.append(data_loss + penalty)
    rises = all(b >= a for a, b in zip(totals, totals[1:])) and totals[-1] > totals[0]
    described = ", ".join(f"{name} {base[name] * STRENGTH_FACTORS[-1]:g}" for name in penalties)
    note = f"{'+'.join(penalties)} strength x{', x'.join(f'{f:g}' for f in STRENGTH_FACTORS[1:])} of {_strengths(base)}"
    if not rises:
        note = ("the total loss does not rise with the penalty: is it added to the loss, with the right sign, "
                "on the weights? " + note)
    return CheckResult("regularization raises the loss", rises, f"rises with strength (up to {described})",
                       " -> ".join(f"{t:.4f}" for t in totals), note,
                       {"penalties": list(penalties), "factors": list(STRENGTH_FACTORS),
                        "base_strengths": base, "data_loss": data_loss, "totals": totals})


def _strengths(base: dict) -> str:
    return ", ".join(f"{v:g}" for v in base.values())


def overfit_check(model, loss_fn, x, y, optimizer, max_steps: int, initial_loss: float) -> CheckResult:
    """Full-batch steps on a few examples until they are all right and the loss is near zero."""
    target = NEAR_ZERO * initial_loss
    losses, accs, reached = [], [], None

    def closure():  # a closure lets L-BFGS re-evaluate; every other optimizer calls it once
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x).float(), y)
        loss.backward()
        return loss

    model.train()
    for step in range(max_steps + 1):
        with torch.no_grad():
            scores = model(x).float()
            state = torch.stack([loss_fn(scores, y), (scores.argmax(dim=1) == y).float().mean()])
        loss, acc = state.tolist()  # one host read per step: a check on 20 examples, not the training loop
        losses.append(loss)
        accs.append(acc)
        if acc == 1.0 and loss <= target:
            reached = step
            break
        if not math.isfinite(loss) or step == max_steps:
            break
        optimizer.step(closure)
    passed = reached is not None
    measured = (f"{reached} steps: loss {losses[-1]:.2g}, acc {100 * accs[-1]:.0f}%" if passed else
                f"after {len(losses) - 1} steps: loss {losses[-1]:.3g}, acc {100 * accs[-1]:.0f}%")
    note = "" if passed else ("could not memorize a handful of examples: look for a bug in the model, the loss or "
                              "the labels, or raise --lr / --max-steps")
    return CheckResult(f"overfit {len(y)} examples", passed,
                       f"acc 100%, loss <= {target:.2g} within {max_steps} steps", measured, note,
                       {"steps": reached, "max_steps": max_steps, "target_loss": target,
                        "losses": losses, "accuracies": accs})


def overfit_subset(c, n: int, seed: int):
    """n stratified training examples (every class when n allows), preprocessed."""
    from trainlab.data.preprocess import to_float
    from trainlab.data.splits import stratified_split

    split = c.splits.train
    if n < len(split):
        _, keep = stratified_split(split.y.cpu(), n, seed)
        idx = torch.as_tensor(keep, device=split.y.device)
    else:
        idx = torch.arange(len(split), device=split.y.device)
    x, y = c.training_examples(idx)
    return c.preprocess(to_float(x)), y


def run_checks(spec, *, tolerance: float = 0.1, examples: int = 20, max_steps: int = 500, lr: float = 0.1,
               use_optimizer: bool = False) -> list[CheckResult]:
    """The three checks on the configured run; the model is built once, with regularization off."""
    from trainlab.optim.optimizers import build_optimizer

    c, _ = assemble_run(spec, regularization=False)
    num_classes = c.splits.num_classes
    x, y = sample_batch(c, spec.trainer.batch_size, spec.seed)
    results = [initial_loss_check(c.model, c.loss_fn, x, y, num_classes, tolerance),
               regularization_check(c.model, c.loss_fn, x, y, spec.regularizer)]
    x_few, y_few = overfit_subset(c, examples, spec.dataset.split_seed)
    if use_optimizer:  # the configured kind and settings, but its weight decay is regularization too
        optimizer = build_optimizer(replace(spec.optimizer, weight_decay=0.0), c.model, len(y_few))
    else:
        optimizer = torch.optim.SGD(c.model.parameters(), lr=lr)
    results.append(overfit_check(c.model, c.loss_fn, x_few, y_few, optimizer, max_steps,
                                 c.loss_fn.initial_loss(num_classes)))
    return results


def results_table(results: list[CheckResult]) -> Table:
    table = Table(title="trainlab check")
    for column in ("check", "result", "expected", "measured"):
        table.add_column(column, no_wrap=True)
    table.add_column("note")  # the only column that wraps
    for r in results:
        verdict = "[green]PASS[/green]" if r.passed else "[bold red]FAIL[/bold red]"
        table.add_row(r.name, verdict, r.expected, r.measured, r.note)
    return table


def plot_overfit(result: CheckResult, path) -> None:
    losses, accs = result.numbers["losses"], result.numbers["accuracies"]
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.plot(range(len(losses)), losses, color="tab:blue", label="loss")
    ax.axhline(result.numbers["target_loss"], color="tab:blue", linestyle=":", linewidth=1, label="near-zero target")
    if all(v > 0 for v in losses if math.isfinite(v)):
        ax.set_yscale("log")
    ax.set(xlabel="step", ylabel="training loss", title=result.name)
    twin = ax.twinx()
    twin.plot(range(len(accs)), [100 * a for a in accs], color="tab:orange", label="accuracy")
    twin.set_ylabel("accuracy (%)")
    twin.set_ylim(0, 105)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="center left", fontsize=8)
    fig.savefig(path, dpi=100)


def check_report(args, spec) -> int:
    """`trainlab check` once entry.check_command has parsed `args` and composed `spec`:
    run the checks, print the table, write check.json and overfit.png; 1 when one fails."""
    results = run_checks(spec, tolerance=args.tolerance, examples=args.examples, max_steps=args.max_steps,
                         lr=args.lr, use_optimizer=args.use_optimizer)
    out = out_dir(args, "check")
    print_table(results_table(results))
    plot_overfit(results[-1], out / "overfit.png")
    write_json(out / "check.json", {"overrides": args.overrides, "passed": all(r.passed for r in results),
                                    "checks": [asdict(r) for r in results]})
    failed = [r.name for r in results if not r.passed]
    print(f"{'FAILED: ' + ', '.join(failed) if failed else 'all checks passed'}; details in {out}")
    return 1 if failed else 0
