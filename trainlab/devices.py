"""Whether a device asked for by name exists on this machine, answered before any folder exists.

torch is imported only when a device other than cpu/auto is named: `trainer.device=cuda:7` on a
machine with one GPU is one line at once, not a failed run folder after the data has loaded.
"""
from trainlab.errors import ConfigError


def check_device(key: str, device: str) -> None:
    if device in ("auto", "cpu"):
        return
    import torch

    if device == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(key, device, "a device this machine has: no Apple MPS device here (cpu or auto)")
        return
    if device == "cuda" or device.startswith("cuda:"):
        index = int(device.partition(":")[2] or 0)
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if index >= count:
            have = f"cuda:0..cuda:{count - 1}" if count else "no CUDA device is visible"
            raise ConfigError(key, device, f"a device this machine has ({have}; cpu or auto otherwise)")
        return
    raise ConfigError(key, device, "one of auto, cpu, cuda, cuda:N, mps")
