"""`python -m benchmarks profile`: where C2's time goes. A cProfile of one C2 and one C1 epoch, then
the per-step pieces of trainlab's training step, timed in isolation next to the plain equivalent. Each piece is called `calls` times in a row; the rounds
interleave the pieces and the median per-call time is reported. Where the
engine's code is inline in Loop.train_epoch (the metric accumulation), the
piece below repeats those lines; keep it in step with trainlab/engine/loop.py.
"""
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from benchmarks import loops


def _per_call_us(fn, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls * 1e6


def _with_grads(model, s):
    xb = loops.to_unit_float(s.x[: s.batch_size], s.channels_last)
    F.cross_entropy(model(xb).float(), s.y[: s.batch_size]).backward()


def engine_parts(c, spec, s, device, calls: int = 300, rounds: int = 7) -> list[tuple[str, float, float]]:
    """[(piece, engine µs per call, plain µs per call)] measured on copies, so c itself is left untouched."""
    from trainlab.data.preprocess import to_float
    from trainlab.engine.loop import EpochSums, Loop
    from trainlab.optim.optimizers import build_optimizer
    from trainlab.optim.schedules import build_schedule

    c = copy.copy(c)
    c.model = copy.deepcopy(s.model)
    if hasattr(c, "train_model"):
        c.train_model = c.model
    c.optimizer = build_optimizer(spec.optimizer, c.model, s.batch_size)
    c.schedule = build_schedule(spec.schedule, spec.optimizer, c.optimizer, c.steps_per_epoch, 10**9)
    loop = Loop(c, spec.trainer, device)
    plain_model = copy.deepcopy(s.model)
    plain_opt = loops.sgd(plain_model, s)
    _with_grads(c.model, s)
    _with_grads(plain_model, s)

    xb = loops.to_unit_float(s.x[: s.batch_size])
    yb = s.y[: s.batch_size]
    scores = plain_model(xb).detach()
    leaf = torch.tensor(2.3, device=device, requires_grad=True)
    data_loss = leaf * 1.0
    acc = EpochSums.zeros(device)
    losses = torch.empty(s.steps, device=device)
    sums = torch.zeros(2, device=device)
    idx = torch.randperm(len(s.y), device=device)[: s.batch_size]
    gen_engine = torch.Generator(device=device).manual_seed(1)
    gen_plain = torch.Generator(device=device).manual_seed(1)

    def engine_metrics():  # the no-grad block of Loop.train_epoch, per step
        with torch.no_grad():
            penalty = torch.zeros((), device=device)
            losses[0] = data_loss.detach()  # the engine writes losses[i]; any index costs the same
            labels = yb.argmax(dim=1) if yb.dim() == 2 else yb
            n = len(labels)
            acc.sums[0] += data_loss.detach().double() * n
            acc.sums[1] += penalty.detach().double() * n
            acc.sums[2] += (scores.argmax(dim=1) == labels).sum()
            acc.sums[3] += n

    def plain_metrics():  # C1's
        with torch.no_grad():
            sums[0] += data_loss.detach()
            sums[1] += (scores.argmax(dim=1) == yb).sum()

    def engine_loss_plumbing():  # penalty() without penalties, the two `data_loss + penalty`, scaler.scale
        penalty = loop.penalty()
        c.scaler.scale(data_loss + penalty)
        return data_loss + penalty

    def scaler_wrapped_step():
        c.scaler.step(plain_opt)
        c.scaler.update()

    pieces = {
        "optimizer.step(): trainlab SGD (2 param groups) vs 1 group": (c.optimizer.step, plain_opt.step),
        "scaler.step(opt) + scaler.update() (disabled scaler) vs opt.step()": (scaler_wrapped_step, plain_opt.step),
        "schedule.step() (LambdaLR + momentum ramp check) vs nothing": (c.schedule.step, lambda: None),
        "penalty() + 2x `data_loss + penalty` + scaler.scale vs nothing": (engine_loss_plumbing, lambda: None),
        "metrics: losses[i], 4 float64 sums vs C1's 2 float32 sums": (engine_metrics, plain_metrics),
        "self.pre(x) (preprocess=none module call) vs nothing": (lambda: c.preprocess(xb), lambda: None),
        "batch: to_float(x[idx]), y[idx] vs the same in C1": (lambda: (to_float(s.x[idx]), s.y[idx]),
                                                              lambda: (loops.to_unit_float(s.x[idx]), s.y[idx])),
    }
    level = getattr(spec.trainer, "diagnostics", "off")
    if level != "off":
        from trainlab.diagnose.live import LiveDiagnostics

        diag = LiveDiagnostics(c.model, level, spec.trainer.diagnostics_every)
        counter = iter(range(10**9))

        def sampled_diagnostics():  # Loop.train_epoch: before_step/after_step on every `every`-th step
            if diag.wants(next(counter)):
                diag.before_step()
                diag.after_step()

        pieces[f"diagnostics={level}, every {diag.every} steps (per-step share) vs nothing"] = (
            sampled_diagnostics, lambda: None)
    if hasattr(loop, "layout"):
        pieces["Loop.layout(x) vs nothing"] = (lambda: loop.layout(xb), lambda: None)
    if c.augment is not None:
        pieces["augment flip+crop: BatchAugment on float32 vs one uint8 gather + to float"] = (
            lambda: c.augment(to_float(s.x[idx]), s.y[idx], gen_engine),
            lambda: loops.to_unit_float(loops.flip_crop_u8(s.x[idx], s.pad, gen_plain)))
    times = {name: ([], []) for name in pieces}
    for _ in range(rounds):
        for name, (engine, plain) in pieces.items():
            times[name][0].append(_per_call_us(engine, calls))
            times[name][1].append(_per_call_us(plain, calls))
    return [(name, statistics.median(e), statistics.median(p)) for name, (e, p) in times.items()]


def print_parts(rows) -> None:
    print(f"\n{'piece':<78} {'engine µs':>10} {'plain µs':>10} {'extra µs':>10}")
    total = 0.0
    for name, engine, plain in rows:
        extra = engine - plain
        total += extra
        print(f"{name:<78} {engine:>10.1f} {plain:>10.1f} {extra:>+10.1f}")
    print(f"{'sum of extras per step':<78} {'':>10} {'':>10} {total:>+10.1f}")


def profile_engine(w, args, device) -> None:
    """cProfile of one C2 epoch and one C1 epoch (after a warm-up epoch each): where the engine's time goes."""
    import cProfile
    import pstats

    from benchmarks.throughput import build, sync

    spec, c, s = build(w, args, device)
    for comp in (loops.TrainlabEngine(c, spec.trainer, device), loops.HandLoop(s)):
        comp.run_epoch()
        prof = cProfile.Profile()
        prof.enable()
        comp.run_epoch()
        sync(device)
        prof.disable()
        print(f"\n=== {comp.name} ({comp.label}): {s.steps} steps, top by own time ===")
        pstats.Stats(prof).sort_stats("tottime").print_stats(18)
    print(f"\n=== {w.name}: engine per-step pieces in isolation (batch {s.batch_size}) ===")
    print_parts(engine_parts(c, spec, s, device))


def main(args, argv: list[str]) -> int:
    from benchmarks.throughput import WORKLOADS, finish_args, pick_device

    finish_args(args)
    device = pick_device(args)
    for name in (list(WORKLOADS) if args.workload == "all" else [args.workload]):
        if not (WORKLOADS[name].gpu_only and device.type != "cuda" and not args.include_gpu_only):
            profile_engine(WORKLOADS[name], args, device)
    return 0
