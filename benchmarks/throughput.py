"""`python -m benchmarks throughput`: training throughput of trainlab's engine against comparators,
side by side in one process.

Every comparator (benchmarks/loops.py, benchmarks/lightning.py) trains a deep copy of the same initial
model (the one trainlab assembles) on the same uint8 training tensor with the same SGD-momentum
settings. A repetition is one epoch of `steps` optimizer steps per comparator; repetitions are
interleaved (C0 C1 C2 C3 C4 C4d, C0 C1 ...) so drift in the machine (clocks, other load) hits every
comparator alike; the first `--warmup` repetitions are dropped. Throughputs are medians over
repetitions; ratios are medians of per-repetition pairs (C2 and Cx ran seconds apart). All of them
run in this process, under the OMP_WAIT_POLICY=PASSIVE and malloc thresholds set before torch is
imported (the process re-executes itself to set them).
"""
from __future__ import annotations

import argparse
import copy
import gc
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks import lightning, loops
from benchmarks.common import OMP_ENV
from benchmarks.throughput_report import machine
from benchmarks.throughput_report import GPU_PENDING, IDS, load_data, render

LR, MOMENTUM = 0.05, 0.9   # trainlab's optimizer=momentum defaults; every comparator uses them
VAL_EXAMPLES = 64          # the synthetic dataset's val split (trainlab carves one); not used for timing

LR, MOMENTUM = 0.05, 0.9   # trainlab's optimizer=momentum defaults; every comparator uses them
VAL_EXAMPLES = 64          # the synthetic dataset's val split (trainlab carves one); not used for timing


@dataclass
class Workload:
    name: str
    title: str
    shape: tuple                  # one example, (C, H, W) uint8
    arch: list                    # trainlab overrides selecting the model
    batch_size: int
    steps: int                    # optimizer steps per repetition (default)
    augment: bool                 # flip + crop(padding 4)
    precision: str = "fp32"       # bf16: autocast (GPU)
    channels_last: bool = False   # GPU
    gpu_only: bool = False
    gpu_batch_size: int | None = None
    gpu_steps: int | None = None


WORKLOADS = {
    "mlp": Workload("mlp", "MLP 784-256-256-10 (ReLU) on MNIST-shaped uint8 1x28x28, 10 classes, no augmentation",
                    (1, 28, 28), ["arch=mlp", "arch.depth=2", "arch.width=256"], 128, 100, False,
                    gpu_batch_size=512, gpu_steps=200),
    "cnn": Workload("cnn", "CNN conv3x3(32)-maxpool-conv3x3(64)-maxpool-avgpool-linear on 3x32x32 uint8, flip + crop(pad 4)",
                    (3, 32, 32), ["arch=cnn"], 128, 20, True, gpu_batch_size=512, gpu_steps=200),
    "resnet18": Workload("resnet18", "ResNet-18 CIFAR variant (3x3 stem, no max pool) on 3x32x32, flip + crop, bf16 autocast, channels_last",
                         (3, 32, 32), ["arch=torchvision", "arch.model=resnet18", "arch.cifar_stem=true"], 512, 50, True,
                         precision="bf16", channels_last=True, gpu_only=True),
}


# ------------------------------------------------------------------ building

def trainlab_overrides(w: Workload, batch_size: int, steps: int, device: torch.device, extra=()) -> list[str]:
    n_train = batch_size * steps
    n_total = n_train + VAL_EXAMPLES
    return [
        "dataset=synthetic", f"dataset.shape=[{','.join(map(str, w.shape))}]", "dataset.classes=10",
        f"dataset.train_size={n_total}", f"dataset.val_split={VAL_EXAMPLES / n_total!r}", "dataset.test_size=64",
        "dataset.dtype=uint8", *w.arch, "preprocess=none", "norm=none", "regularizer=none", "loss=cross_entropy",
        "optimizer=momentum", f"optimizer.lr={LR}", f"optimizer.momentum={MOMENTUM}", "schedule=constant",
        "augment=[flip,crop]" if w.augment else "augment=none",
        *(["augment.flip.p=0.5", "augment.crop.padding=4"] if w.augment else []),
        f"trainer.batch_size={batch_size}", f"trainer.precision={w.precision}", f"trainer.device={device}",
        "trainer.epochs=1", "trainer.progress=off", "seed=0", *extra,
    ]


def trainlab_spec(overrides: list[str]):
    from trainlab.app.compose import compose_job
    from trainlab.config import validate

    return validate(compose_job(overrides))


def build(w: Workload, args, device):
    """trainlab's assembled components, and the shared Setup cut from them (same weights, same data)."""
    from trainlab.engine.assemble import assemble

    on_gpu = device.type == "cuda"
    batch_size = (w.gpu_batch_size if on_gpu and w.gpu_batch_size else w.batch_size)
    steps = args.steps or (w.gpu_steps if on_gpu and w.gpu_steps else w.steps)
    channels_last = w.channels_last and (on_gpu or args.include_gpu_only)
    extra = [*(["trainer.channels_last=true"] if channels_last else []), *args.override]
    spec = trainlab_spec(trainlab_overrides(w, batch_size, steps, device, extra))
    c = assemble(spec, device)
    x, y = c.splits.train.x, c.splits.train.y
    steps = len(y) // batch_size
    setup = loops.Setup(
        model=copy.deepcopy(c.model), x=x, y=y, batch_size=batch_size, steps=steps, augment=w.augment, pad=4,
        lr=LR, momentum=MOMENTUM, device=device,
        amp_dtype=torch.bfloat16 if w.precision == "bf16" else None, channels_last=channels_last)
    return spec, c, setup


# ------------------------------------------------------------------ measuring

def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step_flops(s: loops.Setup) -> int:
    """Matmul/conv FLOPs of one forward + backward on one batch (torch's flop counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = loops.fresh_model(s)
    xb = loops.to_unit_float(s.x[: s.batch_size], s.channels_last)
    with FlopCounterMode(display=False) as counter:
        with loops.autocast(s):
            out = model(xb)
        F.cross_entropy(out.float(), s.y[: s.batch_size]).backward()
    return int(counter.get_total_flops())


def matmul_peak(device, dtype, quick: bool) -> float:
    """Best achieved FLOP/s of a large square matmul: the practical ceiling on this device and dtype."""
    n = (2048 if quick else 8192) if device.type == "cuda" else (512 if quick else 1024)
    reps = 10 if device.type == "cuda" else 4
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    sync(device)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync(device)
        best = min(best, (time.perf_counter() - t0) / reps)
    return 2 * n**3 / best


def make_comparators(c, spec, s: loops.Setup, args, device, epochs: int) -> tuple[list, dict]:
    workers = 0 if device.type == "cpu" else args.workers
    comps = [loops.Floor(s), loops.HandLoop(s), loops.TrainlabEngine(c, spec.trainer, device),
             loops.TutorialLoader(s, workers)]
    skipped = {}
    why = ("not measured (--no-lightning)" if args.no_lightning else None if lightning.lightning_available()
           else "not measured (lightning is not importable: pip install -e '.[bench]')")
    if why:
        skipped = {"C4": why, "C4d": why}
    else:
        threads = args.threads or torch.get_num_threads()
        comps += [lightning.LightningRunner(s, epochs, threads, device_batches=False, workers=workers),
                  lightning.LightningRunner(s, epochs, threads, device_batches=True)]
    return comps, skipped


def interleaved(comps, device, warmup: int, reps: int) -> tuple[dict, dict]:
    """Seconds per epoch for each comparator: C0 C1 C2 C3 C4 C4d, C0 C1 ... ; warm-up repetitions dropped.

    Also the CPU seconds this process used in each repetition (all its threads). CPU time is what
    a comparator costs when other processes share the cores: descheduled time is not in it, while
    the wall clock counts it (on an idle machine wall x threads ~ CPU time)."""
    times = {comp.name: [] for comp in comps}
    cpu = {comp.name: [] for comp in comps}
    for rep in range(warmup + reps):
        for comp in comps:
            gc.collect()
            sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            comp.run_epoch()
            sync(device)
            elapsed, used = time.perf_counter() - t0, time.process_time() - c0
            if rep >= warmup:
                times[comp.name].append(elapsed)
                cpu[comp.name].append(used)
    return times, cpu


def bench_workload(w: Workload, args, device) -> dict:
    spec, c, s = build(w, args, device)
    epochs = args.warmup + args.reps
    comps, skipped = make_comparators(c, spec, s, args, device, epochs)
    print(f"[{w.name}] {s.steps} steps x batch {s.batch_size}, {args.reps} reps (+{args.warmup} warm-up), "
          f"comparators {', '.join(comp.name for comp in comps)}", flush=True)
    load_before = os.getloadavg()[0]
    try:
        times, cpu = interleaved(comps, device, args.warmup, args.reps)
    finally:
        for comp in comps:
            comp.close()
    flops = train_step_flops(s)
    peak_dtype = s.amp_dtype or torch.float32
    peak = matmul_peak(device, peak_dtype, args.quick)
    images = s.steps * s.batch_size
    rows = {}
    for comp in comps:
        median = statistics.median(times[comp.name])
        rows[comp.name] = {"label": comp.label, "median_s": median, "times_s": times[comp.name],
                           "images_per_s": images / median, "min_ips": images / max(times[comp.name]),
                           "max_ips": images / min(times[comp.name]), "step_us": median / s.steps * 1e6,
                           "flops_per_s": flops * s.steps / median, "cpu_s": cpu[comp.name],
                           "cpu_step_us": statistics.median(cpu[comp.name]) / s.steps * 1e6,
                           "cpu_per_wall": statistics.median(u / t for u, t in zip(cpu[comp.name], times[comp.name]))}
    for cid, why in skipped.items():
        rows[cid] = {"label": "Lightning", "skipped": why}
    floor_us = rows["C0"]["step_us"]
    for row in rows.values():
        if "step_us" in row:
            row["overhead_us"] = row["step_us"] - floor_us
    # C2 / Cx per repetition (the two ran seconds apart, under the same machine load), then the median
    def paired(series):
        return {f"C2/{cid}": statistics.median(tx / t2 for tx, t2 in zip(series[cid], series["C2"]))
                for cid in IDS if cid != "C2" and "images_per_s" in rows[cid]}

    ratios, cpu_ratios = paired(times), paired(cpu)
    for cid in IDS:
        print(f"  {cid}: " + (f"{rows[cid]['images_per_s']:>10,.0f} images/s, {rows[cid]['step_us']:>8.0f} µs/step"
                              if "images_per_s" in rows[cid] else rows[cid]["skipped"]), flush=True)
    print("  wall:     " + "  ".join(f"{k} {v:.2f}" for k, v in ratios.items()), flush=True)
    print("  CPU time: " + "  ".join(f"{k} {v:.2f}" for k, v in cpu_ratios.items()), flush=True)
    return {"title": w.title, "batch_size": s.batch_size, "steps": s.steps, "reps": args.reps,
            "warmup": args.warmup, "precision": w.precision, "channels_last": s.channels_last,
            "params": sum(p.numel() for p in s.model.parameters()), "flops_per_step": flops,
            "peak_flops": peak, "peak_dtype": str(peak_dtype).replace("torch.", ""), "rows": rows, "ratios": ratios,
            "cpu_ratios": cpu_ratios,
            "c3_workers": 0 if device.type == "cpu" else args.workers,
            "load_avg": [load_before, os.getloadavg()[0]]}


# ------------------------------------------------------------------ main

def pick_device(args) -> torch.device:
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    if device.type == "cpu":
        args.threads = args.threads or 2
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    return device


def finish_args(args) -> None:
    if args.reps is None:
        args.reps = 2 if args.quick else 11
    if args.quick and args.steps is None:
        args.steps = 5


def main(args, argv: list[str]) -> int:
    finish_args(args)
    out = args.out or (Path(tempfile.gettempdir()) / "trainlab-bench-quick.md" if args.quick else None)
    device = pick_device(args)
    print(f"in this process: {' '.join(f'{k}={v}' for k, v in OMP_ENV.items())}, "
          f"{torch.get_num_threads()} torch threads; 1-minute load {os.getloadavg()[0]:.2f}", flush=True)
    data, notes = load_data(out) if out else ({}, "")
    if args.render_only:
        if out is None:
            sys.exit("--render-only needs --out")
        out.write_text(render(data, notes))
        print(f"results: {out}")
        return 0
    # the targets are for 2 CPU threads; a run with another thread count gets its own section
    key = device.type if device.type != "cpu" or args.threads == 2 else f"cpu-{args.threads}-threads"
    run = {"machine": machine(device, torch.get_num_threads()),
           "command": "python -m benchmarks " + " ".join(argv),
           "workloads": dict(data.get("runs", {}).get(key, {}).get("workloads", {}))}
    for name in (list(WORKLOADS) if args.workload == "all" else [args.workload]):
        w = WORKLOADS[name]
        if w.gpu_only and device.type != "cuda" and not args.include_gpu_only:
            run["workloads"][name] = {"title": w.title, "skipped": f"GPU only: {GPU_PENDING}."}
            print(f"[{name}] skipped: GPU only", flush=True)
            continue
        run["workloads"][name] = bench_workload(w, args, device)
    data.setdefault("runs", {})[key] = run
    if out is None:
        print("not written (no --out)")
        return 0
    out.write_text(render(data, notes))
    print(f"results: {out}")
    return 0
