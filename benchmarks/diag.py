"""`python -m benchmarks diag`: overhead of live diagnostics (trainlab.diagnose.live) per training step.

    python -m benchmarks diag [--rounds 7] [--steps 100] [--device cpu] [--threads 1]

For a digits MLP (the default config) and a small CNN, the same training steps
run with diagnostics off, light and full, every 10 steps (the default cadence)
and every step (the worst case). Variants are interleaved round by round in one
process, so machine noise hits them alike; each figure is the median over rounds
of the mean time per step, and the overhead is relative to "off" of the same round. The process
runs under OMP_WAIT_POLICY=PASSIVE, set before torch is imported (benchmarks/__main__.py).
"""
from __future__ import annotations

import os
import statistics
import time

import torch

from trainlab.data.batches import epoch_batches
from trainlab.data.preprocess import to_float
from trainlab.app.diagnose_setup import assemble_run, load_spec
from trainlab.diagnose.live import LiveDiagnostics

MODELS = {
    "digits MLP 64-256-256-10": ["trainer.batch_size=64"],
    "CNN 16-32 ch, 3x32x32": ["dataset=synthetic", "dataset.dtype=float32", "arch=cnn", "arch.channels=[16,32]",
                              "trainer.batch_size=64"],
}
VARIANTS = [("off", 10), ("light", 10), ("full", 10), ("light", 1), ("full", 1)]


def time_steps(c, diag: LiveDiagnostics, steps: int, batch_size: int, device) -> float:
    """Seconds per training step (forward, backward, optimizer step) with `diag` sampling."""
    model, opt, loss_fn, split = c.model, c.optimizer, c.loss_fn, c.splits.train
    batches = epoch_batches(len(split), batch_size, c.shuffle_gen)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for step in range(steps):
        idx = batches[step % len(batches)]
        x, y = c.preprocess(to_float(split.x[idx])), split.y[idx]
        sampled = diag.wants(step)
        if sampled:
            diag.before_step()
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
        if sampled:
            diag.after_step()
    diag.collect()  # the host read happens once per evaluation: count it in
    sync()
    return (time.perf_counter() - start) / steps


def main(args, argv: list[str]) -> int:
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"{args.steps} steps x {args.rounds} rounds per variant; 1-minute load {load_before:.2f}")
    for title, overrides in MODELS.items():
        spec = load_spec([*overrides, f"trainer.device={args.device}"])
        c, device = assemble_run(spec)
        diags = {v: LiveDiagnostics(c.model, v[0], every=v[1]) for v in VARIANTS}
        time_steps(c, diags[("full", 1)], 20, spec.trainer.batch_size, device)  # warm-up: allocations, kernels, lazy imports
        times = {v: [] for v in VARIANTS}
        for _ in range(args.rounds):
            for v in VARIANTS:
                times[v].append(time_steps(c, diags[v], args.steps, spec.trainer.batch_size, device))
        print(f"\n{title}")
        base = statistics.median(times[("off", 10)])
        for v in VARIANTS:
            ratios = [t / off for t, off in zip(times[v], times[("off", 10)])]
            label = "off" if v[0] == "off" else f"{v[0]}, every {v[1]}"
            print(f"  {label:<16} {1e3 * statistics.median(times[v]):7.3f} ms/step   "
                  f"overhead {100 * (statistics.median(ratios) - 1):+6.1f}%")
        # The steadier figure on a noisy machine: the cost of one sampled step, from the every-step runs.
        for level in ("light", "full"):
            extra = statistics.median([t - off for t, off in zip(times[(level, 1)], times[("off", 10)])])
            print(f"  {level}: +{1e3 * extra:.3f} ms per sampled step = {100 * extra / 10 / base:+.1f}% "
                  f"at every 10 steps")
    print(f"\n1-minute load {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    return 0
