"""BENCHMARKS.md's top part from `python -m benchmarks throughput`'s data: targets, one section per
device, the method. The data of every device seen so far is kept in an embedded JSON comment, so a GPU
run adds its section without erasing the CPU figures; everything below NOTES_MARK (the hand-written
notes and the other subcommands' sections) is kept as it is."""
import datetime
import json
import os
import platform
import re
from pathlib import Path

IDS = ("C0", "C1", "C2", "C3", "C4", "C4d")
GPU_PENDING = "not yet measured (no GPU in this session)"
ENTRY = "python -m benchmarks throughput"


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
    import torch
    import torchvision

    from benchmarks.common import MALLOC_ENV, OMP_ENV

    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "threads": threads, "device": str(device),
            "flush_denormal": True, "omp": " ".join(f"{k}={os.environ.get(k)}" for k in OMP_ENV), "malloc": " ".join(f"{k}={os.environ[k]}" for k in MALLOC_ENV if k in os.environ)
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


TARGETS = [  # (workload, ratio, minimum): figures to report against, CPU at 2 threads
    ("mlp", "C2/C1", 0.95), ("cnn", "C2/C1", 0.95), ("cnn", "C2/C3", 1.2), ("mlp", "C2/C4", 1.3),
    ("mlp", "C2/C4d", None), ("cnn", "C2/C4", None), ("cnn", "C2/C4d", None),  # no target: for reference
]
DATA_RE = re.compile(r"<!-- bench-data\n(.*?)\n-->", re.S)
NOTES_MARK = "<!-- notes: everything below this line is kept when `python -m benchmarks throughput` rewrites this file -->"


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
              f"| environment | {m.get('omp', 'OMP_WAIT_POLICY not recorded')}; allocator {m.get('malloc', 'glibc defaults')} |",
              f"| software | Python {m['python']}, torch {m['torch']}, torchvision {m['torchvision']}, "
              f"lightning {m.get('lightning') or 'not installed'} |",
              f"| platform | {m['platform']} |", "",
              f"Command: `{run['command']}`", ""]
    for name, res in run["workloads"].items():
        lines += [f"### {name}: {res.get('title', name)}", ""]
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
             f"{GPU_PENDING[0].upper() + GPU_PENDING[1:]}. On a CUDA machine `python -m benchmarks throughput --workload all` "
             "adds this section (the CPU section is kept): the same comparators on the GPU, C3 with DataLoader "
             "workers and pinned memory, ResNet-18 in bf16 autocast with channels_last, and achieved TFLOP/s "
             "against a measured matmul peak of the workload's dtype.", "",
             "| workload | images/s C0 – C4d | C2/C1 | C2/C3 | C2/C4 | C2/C4d | C2/C0 | µs/step over C0 | achieved TFLOP/s (% of matmul peak) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in ("mlp", "cnn", "resnet18"):
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
             "measured side by side in one process by `python -m benchmarks throughput` (regenerate with "
             "`python -m benchmarks throughput --workload all --out`; every comparator under "
             "`OMP_WAIT_POLICY=PASSIVE`).", ""]
    lines += targets_section(data)
    runs = data.get("runs", {})
    for key in sorted(k for k in runs if k.startswith("cpu")):
        lines += device_section(key, runs[key])
    lines += device_section("cuda", runs["cuda"]) if "cuda" in runs else gpu_placeholder()
    lines += [METHOD, f"<!-- bench-data\n{json.dumps(_rounded(data), separators=(',', ':'))}\n-->", "", NOTES_MARK, "",
              notes or "## Notes\n\n(hand-written analysis goes here)", ""]
    return "\n".join(lines)
