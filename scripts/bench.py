"""Training throughput of trainlab's engine against comparators, side by side in one process.

    python scripts/bench.py [--workload mlp|cnn|resnet18|all] [--reps N] [--steps N]
                            [--out BENCHMARKS.md] [--quick] [--threads N] [--sweep | --no-sweep]
    python scripts/bench.py --profile --workload mlp --threads 1   # where C2's time goes (cProfile + pieces)
    python scripts/bench.py --render-only                          # rewrite BENCHMARKS.md from its data

Every comparator (scripts/bench_loops.py) trains a deep copy of the same initial
model (the one trainlab assembles) on the same uint8 training tensor with the same
SGD-momentum settings. A repetition is one epoch of `steps` optimizer steps per
comparator; repetitions are interleaved (C0 C1 C2 C3 C4 C4d, C0 C1 ...) so drift in
the machine (clocks, other load) hits every comparator alike; the first
`--warmup` repetitions are dropped. Throughputs are medians over repetitions;
ratios are medians of per-repetition pairs (C2 and Cx ran seconds apart).

The results file keeps the data of every device it has seen in an embedded JSON
comment, so a GPU run adds its section without erasing the CPU figures, and the
hand-written notes section at the end is kept as it is. The sweep section
(scripts/bench_sweep.py) runs on a full `--workload all` run.
"""
import os
import sys

# glibc hands large freed buffers back to the OS and page-faults them in again on the next step
# (thousands of faults per CNN step, 10-20% jitter that depends on allocator state, not on the
# comparator). Fixed thresholds keep freed memory for reuse; every comparator runs under the same
# policy. Set before torch is imported, hence this re-exec; --no-malloc-tuning keeps glibc's defaults.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(4 << 30),
              "MALLOC_TOP_PAD_": str(256 << 20)}
if (__name__ == "__main__" and sys.platform.startswith("linux") and "--no-malloc-tuning" not in sys.argv
        and "--help" not in sys.argv and any(os.environ.get(k) != v for k, v in MALLOC_ENV.items())):
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **MALLOC_ENV})

import argparse  # noqa: E402  (the imports below come after the re-exec on purpose)
import copy
import datetime
import gc
import json
import platform
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_loops as loops  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
IDS = ("C0", "C1", "C2", "C3", "C4", "C4d")
LR, MOMENTUM = 0.05, 0.9   # trainlab's optimizer=momentum defaults; every comparator uses them
VAL_EXAMPLES = 64          # the synthetic dataset's val split (trainlab carves one); not used for timing
GPU_PENDING = "not yet measured (no GPU in this session)"


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
    why = ("not measured (--no-lightning)" if args.no_lightning else None if loops.lightning_available()
           else "not measured (lightning is not importable: pip install -e '.[bench]')")
    if why:
        skipped = {"C4": why, "C4d": why}
    else:
        threads = args.threads or torch.get_num_threads()
        comps += [loops.LightningRunner(s, epochs, threads, device_batches=False, workers=workers),
                  loops.LightningRunner(s, epochs, threads, device_batches=True)]
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


def profile_engine(w: Workload, args, device) -> None:
    """cProfile of one C2 epoch and one C1 epoch (after a warm-up epoch each): where the engine's time goes."""
    import cProfile
    import pstats

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
    from bench_parts import engine_parts, print_parts

    print(f"\n=== {w.name}: engine per-step pieces in isolation (batch {s.batch_size}) ===")
    print_parts(engine_parts(c, spec, s, device))


# ------------------------------------------------------------------ machine

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device, threads) -> dict:
    import torchvision

    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "threads": threads, "device": str(device),
            "flush_denormal": True, "malloc": " ".join(f"{k}={os.environ[k]}" for k in MALLOC_ENV if k in os.environ)
            or "glibc defaults", "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M")}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    try:
        import lightning

        info["lightning"] = lightning.__version__
    except Exception:
        info["lightning"] = None
    return info


# ------------------------------------------------------------------ report

TARGETS = [  # (workload, ratio, minimum): figures to report against, CPU at 2 threads
    ("mlp", "C2/C1", 0.95), ("cnn", "C2/C1", 0.95), ("cnn", "C2/C3", 1.2), ("mlp", "C2/C4", 1.3),
    ("mlp", "C2/C4d", None), ("cnn", "C2/C4", None), ("cnn", "C2/C4d", None),  # no target: for reference
]
DATA_RE = re.compile(r"<!-- bench-data\n(.*?)\n-->", re.S)
NOTES_MARK = "<!-- notes: everything below this line is kept when scripts/bench.py rewrites this file -->"


def load_data(path: Path) -> tuple[dict, str]:
    if not path.is_file():
        return {}, ""
    text = path.read_text()
    match = DATA_RE.search(text)
    data = json.loads(match.group(1)) if match else {}
    notes = text.split(NOTES_MARK, 1)[1].strip() if NOTES_MARK in text else ""
    return data, notes


def fmt_ips(x: float) -> str:
    return f"{x:,.0f}"


def workload_table(res: dict, flops_unit: tuple) -> list[str]:
    unit, scale = flops_unit
    lines = ["| id | comparator | images/s (median) | min – max | µs/step | overhead vs C0 (µs/step) | C2 ÷ this "
             "| CPU µs/step | C2 ÷ this by CPU time | CPU s per wall s |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for cid in IDS:
        row = res["rows"].get(cid)
        if row is None:
            continue
        if "skipped" in row:
            lines.append(f"| {cid} | {row['label']} | {row['skipped']} | | | | | | | |")
            continue
        ratio = "1.00" if cid == "C2" else f"{res['ratios'][f'C2/{cid}']:.2f}"
        cpu_ratio = "1.00" if cid == "C2" else f"{res.get('cpu_ratios', {}).get(f'C2/{cid}', float('nan')):.2f}"
        lines.append(f"| {cid} | {row['label']} | {fmt_ips(row['images_per_s'])} | {fmt_ips(row['min_ips'])} – "
                     f"{fmt_ips(row['max_ips'])} | {row['step_us']:,.0f} | {row['overhead_us']:+,.0f} | {ratio} "
                     f"| {row.get('cpu_step_us', float('nan')):,.0f} | {cpu_ratio} "
                     f"| {row.get('cpu_per_wall', float('nan')):.2f} |")
    c2 = res["rows"]["C2"]
    lines += ["", f"Model FLOPs (forward + backward, matmul/conv) {res['flops_per_step'] / 1e9:.3f} GFLOP per step: "
              f"C2 achieves {c2['flops_per_s'] / scale:.2f} {unit}, C1 {res['rows']['C1']['flops_per_s'] / scale:.2f} "
              f"{unit}, C0 {res['rows']['C0']['flops_per_s'] / scale:.2f} {unit}, against a measured "
              f"{res['peak_dtype']} matmul peak of {res['peak_flops'] / scale:.2f} {unit} "
              f"(C2 at {100 * c2['flops_per_s'] / res['peak_flops']:.0f}% of it)."]
    return lines


def device_section(key: str, run: dict) -> list[str]:
    m = run["machine"]
    gpu = key == "cuda"
    flops_unit = ("TFLOP/s", 1e12) if gpu else ("GFLOP/s", 1e9)
    head = f"## {'GPU' if gpu else 'CPU'} results, {m['threads']} torch threads ({m['date']})"
    lines = [head, "", "| machine | |", "|---|---|",
             f"| CPU | {m['cpu']}, {m['cores']} logical cores |"]
    if gpu:
        lines.append(f"| GPU | {m.get('gpu')} (CUDA {m.get('cuda')}) |")
    lines += [f"| device | {m['device']}; torch threads {m['threads']}; flush denormal on |",
              f"| allocator | {m.get('malloc', 'glibc defaults')} |",
              f"| software | Python {m['python']}, torch {m['torch']}, torchvision {m['torchvision']}, "
              f"lightning {m.get('lightning') or 'not installed'} |",
              f"| platform | {m['platform']} |", "",
              f"Command: `{run['command']}`", ""]
    for name, res in run["workloads"].items():
        lines += [f"### {name}: {res.get('title', WORKLOADS[name].title)}", ""]
        if "skipped" in res:
            lines += [res["skipped"], ""]
            continue
        lines += [f"Batch {res['batch_size']}, {res['steps']} steps per repetition, median of {res['reps']} "
                  f"interleaved repetitions after {res['warmup']} warm-up, {res['params']:,} parameters, "
                  f"precision {res['precision']}{', channels_last' if res['channels_last'] else ''}; "
                  f"C3 with num_workers={res['c3_workers']}."
                  + (f" 1-minute load average {res['load_avg'][0]:.1f} before, {res['load_avg'][1]:.1f} after "
                     f"(on {m['cores']} cores; CPU s per wall s below {m['threads']} means other processes took "
                     "cores from this one)." if "load_avg" in res else ""), ""]
        lines += workload_table(res, flops_unit) + [""]
    return lines


def targets_section(data: dict) -> list[str]:
    lines = ["## Targets (CPU, 2 threads)", "",
             "| workload | ratio | target | measured (wall clock) | met | measured (CPU time) | met |",
             "|---|---|---:|---:|---|---:|---|"]
    cpu = data.get("runs", {}).get("cpu", {}).get("workloads", {})
    for name, key, minimum in TARGETS:
        cells = []
        for kind in ("ratios", "cpu_ratios"):
            value = cpu.get(name, {}).get(kind, {}).get(key)
            cells.append(f"{value:.2f}" if value is not None else "not measured")
            cells.append("—" if value is None or minimum is None else ("yes" if value >= minimum else "**no**"))
        target = f"≥ {minimum}" if minimum is not None else "(none)"
        lines.append(f"| {name} | {key} | {target} | {' | '.join(cells)} |")
    return lines + [""]


def gpu_placeholder() -> list[str]:
    lines = ["## GPU results", "",
             f"{GPU_PENDING[0].upper() + GPU_PENDING[1:]}. On a CUDA machine `python scripts/bench.py --workload all` "
             "adds this section (the CPU section is kept): the same comparators on the GPU, C3 with DataLoader "
             "workers and pinned memory, ResNet-18 in bf16 autocast with channels_last, and achieved TFLOP/s "
             "against a measured matmul peak of the workload's dtype.", "",
             "| workload | images/s C0 – C4d | C2/C1 | C2/C3 | C2/C4 | C2/C4d | C2/C0 | µs/step over C0 | achieved TFLOP/s (% of matmul peak) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in WORKLOADS:
        lines.append(f"| {name} | " + " | ".join([GPU_PENDING] * 8) + " |")
    return lines + [""]


METHOD = """## Method

- **Same model, weights, data, optimizer.** trainlab assembles the run (`dataset=synthetic` with uint8
  images and random labels, `preprocess=none`, `optimizer=momentum` lr 0.05 momentum 0.9,
  `schedule=constant`); every other comparator trains a deep copy of that model, taken before any step,
  on the same training tensor, with `torch.optim.SGD(lr=0.05, momentum=0.9)`.
- **Interleaved repetitions.** One repetition = one epoch (`steps` optimizer steps) of each comparator in
  the order C0 C1 C2 C3 C4 C4d; the first repetition is warm-up and dropped; the tables give medians
  (and the min – max spread) over the rest. Timing has a device sync on both sides.
- **Comparators.** C0: the floor, one fixed pre-converted device batch through forward/backward/step.
  C1: plain PyTorch written for speed: uint8 data on the device, `randperm` per epoch, one gather per
  batch, flip + crop as one batched uint8 gather, loss/accuracy summed on the device, no `.item()`.
  C2: trainlab's `Loop.train_epoch` on components from `trainlab.engine.assemble.assemble` (the code path
  `trainlab train` runs; evaluation and checkpoints are outside it). C3: `DataLoader` over a `Dataset` with
  torchvision v2 per-sample `RandomHorizontalFlip`, `RandomCrop(padding=4)`, `ToDtype(float32, scale=True)`,
  `.item()` on loss and correct count every step; `num_workers=0` on CPU (workers only compete with the
  2 compute threads there). C4: Lightning with no logger, checkpointing, progress bar or model summary,
  fed the way its users write it: C3's DataLoader and per-sample transforms. C4d: the same Lightning
  set-up fed C1's device-resident uint8 batches, flip/crop in `training_step`, so C4d − C1 is
  Lightning's own per-step cost. Lightning's `fit()` runs in a helper thread that parks at every epoch
  start, so it interleaves with the rest and its one-time set-up is not timed.
- **Overhead** = µs per step minus C0's µs per step. **Ratios** C2/Cx = Cx's epoch time ÷ C2's epoch time
  in the same repetition (so both saw the same machine load), median over repetitions: above 1 means
  trainlab is faster.
- **Wall clock and CPU time.** The targets use the wall clock. CPU time (all threads of the process) is a
  check against other processes taking the cores: it leaves out descheduled time but also rewards a
  comparator that keeps one of two cores idle (C3's per-sample transforms run on one thread).
- CPU runs flush denormals (`torch.set_flush_denormal(True)`: training on random labels drifts into
  them) and use 2 torch threads (`--threads`). FLOP/s count matmul/conv FLOPs of forward + backward
  (`torch.utils.flop_counter`) against the best measured square matmul of the same dtype.
"""


def _rounded(value):
    """5 significant digits: the embedded data stays small and diffs stay readable."""
    if isinstance(value, float):
        return float(f"{value:.5g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def render(data: dict, notes: str) -> str:
    lines = ["# trainlab benchmarks", "",
             "Throughput of trainlab's training engine against plain-PyTorch, DataLoader and Lightning loops, "
             "measured side by side in one process by `scripts/bench.py` (regenerate with "
             "`python scripts/bench.py --workload all`).", ""]
    lines += targets_section(data)
    runs = data.get("runs", {})
    for key in sorted(k for k in runs if k.startswith("cpu")):
        lines += device_section(key, runs[key])
    lines += device_section("cuda", runs["cuda"]) if "cuda" in runs else gpu_placeholder()
    if data.get("sweeps"):
        from bench_sweep import render_sweep

        for dev, sweep in data["sweeps"].items():
            lines += render_sweep(sweep, dev)
    lines += [METHOD, f"<!-- bench-data\n{json.dumps(_rounded(data), separators=(',', ':'))}\n-->", "", NOTES_MARK, "",
              notes or "## Notes\n\n(hand-written analysis goes here)", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", choices=[*WORKLOADS, "all"], default="all")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions per comparator (default 11; quick 2)")
    p.add_argument("--warmup", type=int, default=1, help="untimed repetitions first (default 1)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps per repetition (default per workload)")
    p.add_argument("--out", type=Path, default=None, help="results file (default BENCHMARKS.md; quick: a temp file)")
    p.add_argument("--quick", action="store_true", help="tiny run for a smoke test: 2 reps of 5 steps, no sweep")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default 2 on CPU)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="C3 DataLoader workers on GPU")
    p.add_argument("--no-lightning", action="store_true", help="skip C4 and C4d")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="extra trainlab override for C2 (repeatable), e.g. trainer.diagnostics=off")
    p.add_argument("--no-malloc-tuning", action="store_true",
                   help="keep glibc's default malloc thresholds (more page-fault jitter on CPU)")
    p.add_argument("--sweep", action=argparse.BooleanOptionalAction, default=None,
                   help="also measure sweep throughput (default: on for a full --workload all run)")
    p.add_argument("--sweep-jobs", type=int, default=20)
    p.add_argument("--include-gpu-only", action="store_true",
                   help="run GPU-only workloads (resnet18) on the CPU too: slow, for checking the code path")
    p.add_argument("--render-only", action="store_true",
                   help="rewrite the results file from the data embedded in it, measuring nothing")
    p.add_argument("--profile", action="store_true", help="print a cProfile of C2 and C1 epochs and exit")
    args = p.parse_args(argv)
    if args.reps is None:
        args.reps = 2 if args.quick else 11
    if args.quick and args.steps is None:
        args.steps = 5
    if args.sweep is None:
        args.sweep = args.workload == "all" and not args.quick
    if args.out is None:
        args.out = Path(tempfile.gettempdir()) / "trainlab-bench-quick.md" if args.quick else REPO / "BENCHMARKS.md"
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    if device.type == "cpu":
        args.threads = args.threads or 2
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    names = list(WORKLOADS) if args.workload == "all" else [args.workload]
    if args.profile:
        for name in names:
            if not (WORKLOADS[name].gpu_only and device.type != "cuda" and not args.include_gpu_only):
                profile_engine(WORKLOADS[name], args, device)
        return 0
    data, notes = load_data(args.out)
    if args.render_only:
        args.out.write_text(render(data, notes))
        print(f"results: {args.out}")
        return 0
    # the targets are for 2 CPU threads; a run with another thread count gets its own section
    key = device.type if device.type != "cpu" or args.threads == 2 else f"cpu-{args.threads}-threads"
    run = {"machine": machine(device, torch.get_num_threads()),
           "command": "python scripts/bench.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "workloads": dict(data.get("runs", {}).get(key, {}).get("workloads", {}))}
    for name in names:
        w = WORKLOADS[name]
        if w.gpu_only and device.type != "cuda" and not args.include_gpu_only:
            run["workloads"][name] = {"title": w.title, "skipped": f"GPU only: {GPU_PENDING}."}
            print(f"[{name}] skipped: GPU only", flush=True)
            continue
        run["workloads"][name] = bench_workload(w, args, device)
    data.setdefault("runs", {})[key] = run
    if args.sweep:
        from bench_sweep import measure_sweep

        data.setdefault("sweeps", {})[device.type] = measure_sweep(args.sweep_jobs)
    args.out.write_text(render(data, notes))
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
