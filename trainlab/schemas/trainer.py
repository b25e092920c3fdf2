"""trainer=: the training loop's settings, one schema.

conf/trainer/default.yaml is generated from it (trainlab.schemas.yaml_export);
trainer=debug is a hand-written preset on top of it.
"""
from dataclasses import dataclass, field
from typing import Any

from trainlab.errors import check

EVAL_METRICS = ("auto", "top5", "per_class", "confusion")  # trainer.metrics (trainlab.engine.eval_metrics)
FIGURES = ("auto", "always", "never")  # trainer.figures: who draws a run's curves.png and diagnostics.png


@dataclass
class EarlyStopSchema:
    patience: int = 0        # evaluations without improvement of `monitor` before stopping (0 = off)
    min_delta: float = 0.0   # an improvement smaller than this (in the metric's units) does not count


@dataclass
class EMASchema:
    decay: float = 0.0     # weight of the old average per step (0 = off; 0.999 is typical)
    warmup: bool = True    # ramp the decay up as min(decay, (1+t)/(10+t)) so early averages forget the init


@dataclass
class PolyakSchema:
    epochs: int = 0        # average the weights of the last N epochs uniformly, one sample per epoch end (0 = off);
                           # batch-norm statistics are recomputed for the average on the training split


@dataclass
class MulticropSchema:
    """The views of trainer.tta=multicrop."""

    sizes: list = field(default_factory=lambda: [0.875])  # crop side / image side, one entry per scale
                                                          # (0.875 = AlexNet's 224 of 256; 1.0 = the whole image);
                                                          # every crop is resized back to the input size
    corners: bool = True   # the four corner crops besides the centre one, at every size below 1.0
    flip: bool = True      # each crop also mirrored horizontally (10 views per size: "10 crops with flips")


@dataclass
class LoaderSchema:
    """The DataLoader of trainer.data_placement=loader (data too large for the device, or images on disk)."""

    workers: int | None = None     # processes reading (and decoding) batches; 0 = in the training process;
                                   # null = this process's share of the CPU cores, at most 8
    prefetch_factor: int = 2       # batches each worker reads ahead (with workers > 0)
    persistent_workers: bool = True  # keep workers alive between epochs and evaluations (no restart cost)


@dataclass
class LimitBatchesSchema:
    """A few batches instead of whole splits: to check quickly that a configuration runs end to end."""

    train: int | None = None  # optimizer steps per epoch at most (null = the whole training split)
    val: int | None = None    # evaluation batches (of trainer.eval_batch_size examples) of the validation
                              # split at most, which also caps the train-eval sample (null = all)
    test: int | None = None   # evaluation batches of the test split at most (null = all)


@dataclass
class TrainerSchema:
    """Training loop settings."""

    epochs: int = 20               # passes over the training split
    batch_size: int = 64           # examples per optimizer step (per process)
    eval_batch_size: int = 1024    # examples per forward pass when evaluating
    device: str = "auto"           # auto (cuda if available), cpu, cuda, cuda:N, mps
    threads: Any = "auto"          # torch intra-op threads: auto = the cores this process may use / the jobs
                                   # running at once (joblib n_jobs, DDP ranks per node), at least 1; or a count
    precision: str = "fp32"        # fp32, bf16 or fp16 (autocast; fp16 adds a gradient scaler)
    eval_every: int = 1            # evaluate on the validation split every N epochs
    checkpoint_every: int = 1      # write checkpoints/last.pt every N epochs (and always at the end)
    checkpoint_every_minutes: float | None = None  # also write last.pt when this many minutes passed since the
                                   # last one, mid-epoch if need be (long epochs; single process); null = off
    monitor: str = "val_acc"       # metric that picks checkpoints/best.pt: val_acc (max) or val_loss (min)
    early_stop: EarlyStopSchema = field(default_factory=EarlyStopSchema)  # stop when `monitor` stalls
    stop_after: int | None = None  # end this session after N epochs, resumable (time-sliced jobs); null = run to the end
    deterministic: bool = False    # deterministic kernels (slower on GPU); CPU runs are deterministic anyway
    compile: bool = False          # torch.compile the model (first steps are slow while it compiles;
                                   # compiled code is reused by later jobs of a multirun)
    compile_backend: str = "inductor"  # inductor (fast kernels), or eager / aot_eager to debug compilation
    channels_last: bool = False    # NHWC memory layout for convnets (pairs with bf16 on tensor-core GPUs)
    diagnostics: str = "light"     # live per-layer statistics in metrics.csv: off, light (update/weight ratio,
                                   # grad norm), full (+ activations)
    diagnostics_every: int = 20    # steps between diagnostic samples
    data_placement: str = "auto"   # where batches come from: auto, device, loader, host.
                                   # auto: device when all splits' tensors take at most device_data_limit_mb,
                                   # else loader; an image folder left on disk (dataset.preload) always uses loader.
                                   # device: whole splits on the training device as uint8, gathered by a device
                                   # permutation (fastest). loader: a DataLoader with workers, pinned memory and
                                   # prefetch, the same batches in the same order. host: pinned host memory,
                                   # gathered in the training process and copied per batch.
    device_data_limit_mb: int = 4096  # MB of split tensors data_placement=auto still puts on the device
    loader: LoaderSchema = field(default_factory=LoaderSchema)  # the DataLoader of data_placement=loader
    progress: str = "auto"         # auto (rich bar on a terminal, plain lines otherwise), rich, plain, off
    print_config: bool = False     # print the whole composed config as a tree when the run starts
    save_checkpoints: bool = True  # write last.pt/best.pt (turn off for throwaway sweeps)
    snapshots: bool = False        # also keep checkpoints/snapshot_eNNN.pt at every checkpoint (snapshot ensembles)
    ema: EMASchema = field(default_factory=EMASchema)  # exponential moving average of the weights, evaluated beside the model
    tta: str = "none"              # test-time augmentation reported beside the plain test metric: none, flip, crop,
                                   # multicrop (views set by trainer.multicrop); probabilities averaged over views
    multicrop: MulticropSchema = field(default_factory=MulticropSchema)  # the views of tta=multicrop
    polyak: PolyakSchema = field(default_factory=PolyakSchema)  # uniform weight average of the last epochs,
                                                                # evaluated beside the model like the EMA
    nonfinite: str = "stop"        # a NaN/inf loss: stop the run as diverged (no per-step sync),
                                   # or skip the step (one host sync per step)
    metrics: list = field(default_factory=lambda: ["auto"])  # evaluation metrics beside top-1: top5, per_class
                                   # (val_acc_c<k> columns), confusion (confusion.png of the test split);
                                   # auto = top5 when the dataset has more than 10 classes
    replicas_per_group: int = 32   # hydra/launcher=vectorized: at most this many seed replicates trained as one
                                   # stacked model in one process (memory grows with it); other launchers ignore it
    limit_batches: LimitBatchesSchema = field(default_factory=LimitBatchesSchema)  # a few batches of each split
    profile: bool = False          # torch.profiler over the first epoch's steps: a trace TensorBoard opens
                                   # (profile/ in the run folder) and the top operators in train.log
    keep_folder: bool = True       # false: the run folder is removed once the run completed (trainer=fast_dev_run)
    figures: str = "auto"          # a run's curves.png and diagnostics.png: auto (a single run draws them; a sweep's
                                   # jobs leave them to `trainlab plot`, the sweep draws its own), always, never

    def __post_init__(self):
        check(self.threads == "auto" or (isinstance(self.threads, int) and not isinstance(self.threads, bool)
                                         and self.threads >= 1), "threads", self.threads, "auto or an integer >= 1")
        check(self.epochs >= 1, "epochs", self.epochs, "an integer >= 1")
        check(self.batch_size >= 1, "batch_size", self.batch_size, "an integer >= 1")
        check(self.eval_batch_size >= 1, "eval_batch_size", self.eval_batch_size, "an integer >= 1")
        check(self.device in ("auto", "cpu", "cuda", "mps") or (self.device.startswith("cuda:") and self.device[5:].isdigit()),
              "device", self.device, "one of auto, cpu, cuda, cuda:N, mps")
        check(self.precision in ("fp32", "bf16", "fp16"), "precision", self.precision, "one of fp32, bf16, fp16")
        check(self.eval_every >= 1, "eval_every", self.eval_every, "an integer >= 1")
        check(self.checkpoint_every >= 1, "checkpoint_every", self.checkpoint_every, "an integer >= 1")
        check(self.checkpoint_every_minutes is None or self.checkpoint_every_minutes > 0, "checkpoint_every_minutes",
              self.checkpoint_every_minutes, "a positive number of minutes, or null (off)")
        check(self.monitor in ("val_acc", "val_loss"), "monitor", self.monitor, "one of val_acc, val_loss")
        check(0 <= self.ema.decay < 1, "ema.decay", self.ema.decay, "a decay in [0, 1) (0 = off)")
        check(self.figures in FIGURES, "figures", self.figures, f"one of {', '.join(FIGURES)}")
        check(self.tta in ("none", "flip", "crop", "multicrop"), "tta", self.tta, "one of none, flip, crop, multicrop")
        sizes = list(self.multicrop.sizes)
        check(len(sizes) >= 1 and all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1
                                      for v in sizes), "multicrop.sizes", sizes,
              "a non-empty list of fractions in (0, 1] (crop side / image side)")
        check(self.polyak.epochs >= 0, "polyak.epochs", self.polyak.epochs, "an epoch count >= 0 (0 = off)")
        check(self.polyak.epochs <= self.epochs, "polyak.epochs", self.polyak.epochs,
              f"at most trainer.epochs ({self.epochs}): the average is over the last epochs of the run")
        check(self.nonfinite in ("stop", "skip"), "nonfinite", self.nonfinite, "one of stop, skip")
        check(all(m in EVAL_METRICS for m in self.metrics), "metrics", list(self.metrics),
              "a list of " + ", ".join(EVAL_METRICS))
        check(self.diagnostics in ("off", "light", "full"), "diagnostics", self.diagnostics, "one of off, light, full")
        check(self.diagnostics_every >= 1, "diagnostics_every", self.diagnostics_every, "an integer >= 1")
        check(not (self.diagnostics == "full" and self.compile), "diagnostics", self.diagnostics,
              "light or off with trainer.compile=true (full adds hooks that would force recompiles)")
        check(self.data_placement in ("auto", "device", "host", "loader"), "data_placement", self.data_placement,
              "one of auto, device, host, loader")
        check(self.loader.workers is None or self.loader.workers >= 0, "loader.workers", self.loader.workers,
              "an integer >= 0 (0 = no worker processes) or null")
        check(self.loader.prefetch_factor >= 1, "loader.prefetch_factor", self.loader.prefetch_factor,
              "an integer >= 1 (batches read ahead per worker)")
        check(self.replicas_per_group >= 1, "replicas_per_group", self.replicas_per_group, "an integer >= 1")
        check(self.device_data_limit_mb >= 0, "device_data_limit_mb", self.device_data_limit_mb, "a size in MB >= 0")
        check(self.compile_backend in ("inductor", "eager", "aot_eager", "cudagraphs"), "compile_backend",
              self.compile_backend, "one of inductor, eager, aot_eager, cudagraphs")
        check(self.early_stop.patience >= 0, "early_stop.patience", self.early_stop.patience, "an integer >= 0")
        check(self.early_stop.min_delta >= 0, "early_stop.min_delta", self.early_stop.min_delta, "a non-negative number")
        check(self.stop_after is None or self.stop_after >= 1, "stop_after", self.stop_after, "a positive epoch count or null")
        check(self.progress in ("auto", "rich", "plain", "off"), "progress", self.progress, "one of auto, rich, plain, off")
        for split in ("train", "val", "test"):
            limit = getattr(self.limit_batches, split)
            check(limit is None or limit >= 1, f"limit_batches.{split}", limit, "a batch count >= 1, or null (all)")
