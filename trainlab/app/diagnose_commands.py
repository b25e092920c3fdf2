"""`trainlab inspect`, `trainlab gradcheck` and `trainlab lr-find` on the configured run.

Each wraps one library module of trainlab.diagnose around the model, loss,
optimizer kind and data that `trainlab train` would build from the same
overrides, at the same seeded initialization:

    inspect    per-layer activation mean/std, saturated/dead fractions and the
               gradient std after one backward, on a batch of real data (or
               unit-Gaussian input of the model's input shape: --gaussian);
               histograms in activations.png.              (inspect_layers.py)
    gradcheck  backprop against finite differences in float64 on a few
               examples, per parameter tensor; exit 1 on a wrong gradient.
                                                           (gradcheck.py)
    lr-find    the LR range test with the configured optimizer kind, on
               preprocessed (and augmented) training batches; the suggestion
               is printed and lr_find.png written.          (lr_find.py)

Their flags are parsed in entry.py, which imports this module (and torch) only after
they are.
"""
from __future__ import annotations

import math
from dataclasses import replace

import torch
from rich.table import Table

from trainlab.app.diagnose_setup import assemble_run, out_dir, print_table, sample_batch, write_json
from trainlab.errors import ConfigError

# inspect's one-line assessment: how much the activation spread may change from
# the first hidden layer to the last before the signal counts as vanishing or
# exploding, and how much of a layer may be saturated or dead.
SHRINK_LIMIT = 0.1
GROW_LIMIT = 10.0
MOSTLY = 0.5


# -- inspect ---------------------------------------------------------------------------------------
def gaussian_width(spec, width: str) -> int | None:
    """The input width of the Gaussian study: an MLP's first hidden layer (`layer`), so every
    layer, the first included, maps n units to n as in the classic 10-layer/500-unit study; None:
    the dataset's input shape (`data`, and every architecture that is not an MLP)."""
    return spec.arch.widths()[0] if width == "layer" and spec.arch.name == "mlp" else None


def inspect_network(spec, *, gaussian: bool = False, batch: int = 256, width: str = "layer"):
    """Layer statistics of the configured network at initialization (train mode, one batch)."""
    from trainlab.diagnose.inspect_layers import is_activation, layer_statistics
    from trainlab.nn.activations import ACTIVATIONS

    c, device = assemble_run(spec)
    x, y = sample_batch(c, batch, spec.seed)
    if gaussian:  # the textbook experiment: zero-mean unit-variance input
        y = y[torch.arange(batch, device=y.device) % len(y)]  # labels only feed the loss: any will do
        shape, fan_in = (batch, *x.shape[1:]), gaussian_width(spec, width)
        if fan_in is not None:  # the same network, seeded as a run seeds it, built for fan_in inputs
            from trainlab.engine.assemble import seed_everything
            from trainlab.nn import build_model

            seed_everything(spec.seed)
            c.model = build_model(spec, (fan_in,), c.splits.num_classes).to(device)
            shape = (len(y), fan_in)
        x = torch.randn(shape, generator=torch.Generator().manual_seed(spec.seed)).to(device)
    layer_types = None  # every module inspect_layers knows as an activation
    if not any(is_activation(m) for m in c.model.modules()):
        # an activation module it does not know (a plugin's, say): look for the configured one's type
        layer_types = (type(ACTIVATIONS[spec.activation.name].build(spec.activation).make(1)),)
    try:
        return layer_statistics(c.model, x, y, c.loss_fn, layer_types=layer_types, seed=spec.seed)
    except ValueError as err:
        raise ConfigError("arch", spec.arch.name, f"a network with activation modules to inspect ({err})") from None


def assess(stats) -> list[str]:
    """What the statistics say, in words: vanishing or exploding spread, saturated or dead layers."""
    findings = []
    first, last = stats[0].std, stats[-1].std
    ratio = last / first if first > 0 else math.inf
    if ratio < SHRINK_LIMIT:
        findings.append(f"activations shrink with depth: std {first:.2g} -> {last:.2g} (x{ratio:.1e}); "
                        "the weights are too small for this depth")
    elif ratio > GROW_LIMIT:
        findings.append(f"activations grow with depth: std {first:.2g} -> {last:.2g} (x{ratio:.1e})")
    saturated = [s.name for s in stats if (s.frac_saturated or 0) > MOSTLY]
    if saturated:
        findings.append(f"{len(saturated)}/{len(stats)} layers mostly saturated ({', '.join(saturated)}): "
                        "the weights are too large, gradients vanish")
    dead = [s.name for s in stats if (s.frac_dead_units or 0) > MOSTLY]
    if dead:
        findings.append(f"{len(dead)}/{len(stats)} layers with mostly dead units ({', '.join(dead)})")
    return findings


def stats_table(stats, title: str) -> Table:
    table = Table(title=title)
    for column in ("#", "layer", "kind", "mean", "std", "saturated", "dead units", "grad std"):
        table.add_column(column, justify="left" if column in ("layer", "kind") else "right")
    for s in stats:
        table.add_row(str(s.index), s.name, s.kind, f"{s.mean:+.3e}", f"{s.std:.3e}", _pct(s.frac_saturated),
                      _pct(s.frac_dead_units), "-" if s.grad_std is None else f"{s.grad_std:.3e}")
    return table


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def inspect_report(args, spec) -> int:
    """`trainlab inspect` once entry.inspect_command has parsed `args` and composed `spec`:
    print the layer table and findings, write inspect.json and activations.png."""
    from trainlab.diagnose.inspect_layers import save_histograms

    stats = inspect_network(spec, gaussian=args.gaussian, batch=args.batch, width=args.gaussian_width)
    out = out_dir(args, "inspect")
    fan_in = gaussian_width(spec, args.gaussian_width)
    source = ("real data" if not args.gaussian else
              f"unit-Gaussian input, {fan_in} wide" if fan_in else "unit-Gaussian input of the data's shape")
    print_table(stats_table(stats, f"layer statistics at initialization ({source}, batch {args.batch}, train mode)"))
    findings = assess(stats)
    save_histograms(stats, out / "activations.png")
    write_json(out / "inspect.json", {"overrides": args.overrides, "gaussian": args.gaussian,
                                      "layers": [s.to_dict() for s in stats], "findings": findings})
    print("\n".join(findings) if findings else "activations keep a steady spread through every layer")
    print(f"histograms: {out / 'activations.png'}")
    return 0


# -- gradcheck -------------------------------------------------------------------------------------
def gradcheck_network(spec, *, examples: int = 4, entries: int = 20):
    """check_gradients on the configured model and loss, with a few preprocessed training examples."""
    from trainlab.diagnose.gradcheck import KINKED_MODULES, check_gradients
    from trainlab.nn.activations import ACTIVATIONS

    c, _ = assemble_run(spec)
    x, y = sample_batch(c, examples, spec.seed)
    # check_gradients finds kinked modules (ReLU, Maxout, ...) and a loss with has_kinks by itself;
    # an activation that declares kinks its modules do not show must be declared, or its
    # harmless kink crossings would fail the strict smooth-model tolerance.
    declared = ACTIVATIONS[spec.activation.name].build(spec.activation).has_kinks
    visible = any(getattr(m, "has_kinks", False) or isinstance(m, KINKED_MODULES) for m in c.model.modules())
    return check_gradients(c.model, c.loss_fn, x, y, max_entries_per_tensor=entries, seed=spec.seed,
                           kinks=declared and not visible)


BAND_STYLE = {"excellent": "green", "ok with kinks": "green", "suspicious": "yellow", "wrong": "bold red",
              "unverified": "yellow"}


def gradcheck_table(report) -> Table:
    table = Table(title=f"gradient check (float64, h={report.eps:g}, loss={report.loss:.6g})")
    for column in ("parameter", "shape", "entries", "worst rel. error", "band", "analytic", "numeric", "kink straddles"):
        table.add_column(column, justify="left" if column in ("parameter", "band") else "right")
    for t in report.tensors:
        style = BAND_STYLE.get(t.band, "")
        table.add_row(t.name, "x".join(map(str, t.shape)) or "scalar", str(t.entries_checked), _sci(t.worst_rel_error),
                      f"[{style}]{t.band}[/{style}]" if style else t.band, _sci(t.analytic), _sci(t.numeric),
                      str(t.kink_straddles))
    return table


def _sci(value) -> str:
    return "-" if value is None else f"{value:.2e}"


def gradcheck_report(args, spec) -> int:
    """`trainlab gradcheck` once entry.gradcheck_command has parsed `args` and composed `spec`:
    print the table and the verdict, write gradcheck.json; 1 on a wrong gradient."""
    report = gradcheck_network(spec, examples=args.examples, entries=args.entries)
    out = out_dir(args, "gradcheck")
    print_table(gradcheck_table(report))
    if report.has_kinks:
        print("kinks: " + "; ".join(report.kink_sources) + " (entries whose +h/-h steps straddle a kink are "
              "counted, not scored)")
    for note in report.notes:
        print(note)
    write_json(out / "gradcheck.json", {"overrides": args.overrides, **report.to_dict()})
    if report.passed:
        print(f"PASSED: every gradient within {report.tolerance:g} of its finite difference; details in {out}")
        return 0
    print(f"FAILED: wrong gradient in {', '.join(f'{t.name} ({t.band})' for t in report.failing)}; details in {out}")
    return 1


# -- lr-find ---------------------------------------------------------------------------------------
class TrainingBatches:
    """One epoch of training batches per iteration, made as the training loop makes them:
    device-resident indexing, augmentation, preprocessing. Re-iterable, so the LR range
    test restarts it (a new shuffle) instead of keeping every batch in memory."""

    def __init__(self, c, batch_size: int):
        self.c, self.batch_size = c, batch_size

    def __iter__(self):
        from trainlab.data.batches import epoch_batches
        from trainlab.data.preprocess import to_float

        c = self.c
        for idx in epoch_batches(len(c.splits.train), self.batch_size, c.shuffle_gen):
            x, target = c.training_examples(idx)
            x = to_float(x)
            if c.augment is not None:
                x, target = c.augment(x, target, c.aug_gen)
            yield c.preprocess(x), target


def lr_find_network(spec, *, steps: int = 100, lr_min: float = 1e-7, lr_max: float = 10.0):
    """The LR range test of the configured model, optimizer kind, loss (with penalties) and data."""
    from trainlab.diagnose.lr_find import lr_range_test
    from trainlab.optim.optimizers import OPTIMIZERS
    from trainlab.optim.regularizers import penalized_weights

    c, _ = assemble_run(spec)
    weights = penalized_weights(c.model)

    def make_optimizer(_params, lr):  # the configured kind and settings; only the lr is swept
        return OPTIMIZERS[spec.optimizer.name].build(replace(spec.optimizer, lr=lr), c.model)

    def loss(scores, target):  # what training minimizes: data loss plus the configured penalties
        total = c.loss_fn(scores.float(), target)
        return total + sum(p(weights) for p in c.penalties) if c.penalties else total

    return lr_range_test(c.model, make_optimizer, TrainingBatches(c, spec.trainer.batch_size), loss,
                         lr_min=lr_min, lr_max=lr_max, num_steps=steps)


def lr_find_report(args, spec) -> int:
    """`trainlab lr-find` once entry.lr_find_command has parsed `args` and composed `spec`:
    print the suggestion, write lr_find.json and lr_find.png."""
    from trainlab.diagnose.lr_find import save_plot

    result = lr_find_network(spec, steps=args.steps, lr_min=args.lr_min, lr_max=args.lr_max)
    out = out_dir(args, "lr-find")
    print(result.render())
    print(f"  configured: optimizer={spec.optimizer.name} optimizer.lr={spec.optimizer.lr:g}")
    save_plot(result, out / "lr_find.png")
    write_json(out / "lr_find.json", {"overrides": args.overrides, "optimizer": spec.optimizer.name,
                                      **result.to_dict()})
    print(f"plot: {out / 'lr_find.png'}")
    return 0
