"""C4 and C4d: Lightning, the comparators of `python -m benchmarks throughput` that need it installed
(pip install -e '.[bench]'). The shared set-up and C0-C3 are in benchmarks/loops.py."""
import threading

import torch
import torch.nn.functional as F

from benchmarks.loops import Setup, device_batches, flip_crop_u8, fresh_model, sgd, to_unit_float, tutorial_loader


def lightning_available() -> bool:
    try:
        import lightning  # noqa: F401
    except Exception:
        return False
    return True


class DeviceBatchIterable:
    """C1's data path as an iterable Lightning accepts as a train dataloader."""

    def __init__(self, s: Setup, g: torch.Generator):
        self.s, self.g = s, g

    def __len__(self):
        return self.s.steps

    def __iter__(self):
        return device_batches(self.s, self.g)


class _Stop(Exception):
    pass


class LightningRunner:
    """Lightning's fit() runs in a helper thread that parks at the start of every epoch.

    run_epoch() releases it for exactly one epoch and waits until it parks
    again, so Lightning's per-epoch machinery is inside the measurement, its
    one-time fit() setup is not, and it interleaves with the other comparators.
    """

    LEAN = "Lightning (no logger, checkpointing, progress bar, model summary)"

    def __init__(self, s: Setup, epochs: int, threads: int, device_batches: bool, workers: int = 0):
        import logging
        import warnings

        import lightning as L

        for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)  # no banner about accelerators and tips
        warnings.filterwarnings("ignore", module=r"lightning\..*")
        self.s, self.epochs, self.threads = s, epochs, threads
        if device_batches:
            self.name, self.label = "C4d", f"{self.LEAN} fed C1's device-resident batches, flip/crop in training_step"
        else:
            self.name, self.label = "C4", f"{self.LEAN} + C3's DataLoader and per-sample transforms, num_workers={workers}"
        self.go = threading.Semaphore(0)
        self.parked = threading.Event()
        self.finished, self.stopping, self.error = False, False, None
        self.epochs_run = 0
        runner = self

        class Gate(L.Callback):
            def on_train_epoch_start(self, trainer, pl_module):
                runner.parked.set()
                runner.go.acquire()
                if runner.stopping:
                    raise _Stop()

        class Module(L.LightningModule):
            def __init__(self, model):
                super().__init__()
                self.model = model
                self.g = torch.Generator(device=s.device).manual_seed(s.seed + 11)

            def training_step(self, batch, batch_idx):
                xb, yb = batch
                if device_batches:  # uint8 straight from the device tensor
                    if s.augment:
                        xb = flip_crop_u8(xb, s.pad, self.g)
                    xb = to_unit_float(xb, s.channels_last)
                elif s.channels_last:  # floats from the DataLoader, already augmented
                    xb = xb.contiguous(memory_format=torch.channels_last)
                out = self.model(xb)
                return F.cross_entropy(out.float(), yb)

            def configure_optimizers(self):
                return sgd(self.model, s)

        self.module = Module(fresh_model(s))
        if device_batches:
            self.batches = DeviceBatchIterable(s, torch.Generator(device=s.device).manual_seed(s.seed + 17))
        else:
            self.batches = tutorial_loader(s, workers, s.seed + 19)
        self.trainer = L.Trainer(
            accelerator="gpu" if s.device.type == "cuda" else "cpu", devices=1, max_epochs=epochs,
            precision="bf16-mixed" if s.amp_dtype == torch.bfloat16 else "32-true",
            logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            num_sanity_val_steps=0, limit_val_batches=0, callbacks=[Gate()], deterministic=False)
        self.thread = threading.Thread(target=self._fit, name="bench-lightning", daemon=True)
        self.thread.start()
        self.parked.wait()
        self._raise()

    def _fit(self):
        # thread-local state: OpenMP thread count and the denormal flag live per thread
        torch.set_num_threads(self.threads)
        torch.set_flush_denormal(True)
        try:
            self.trainer.fit(self.module, train_dataloaders=self.batches)
        except _Stop:
            pass
        except BaseException as err:  # surfaced in the main thread by run_epoch
            self.error = err
        finally:
            self.finished = True
            self.parked.set()

    def _raise(self):
        if self.error is not None:
            raise RuntimeError(f"Lightning comparator failed: {self.error!r}") from self.error

    def run_epoch(self):
        if self.finished:
            self._raise()
            raise RuntimeError("Lightning comparator asked for more epochs than max_epochs")
        self.parked.clear()
        self.go.release()
        self.parked.wait()
        self.epochs_run += 1
        self._raise()

    def close(self):
        if not self.finished:
            self.stopping = True
            self.go.release()
        self.thread.join(timeout=30)
