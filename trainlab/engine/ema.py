"""An exponential moving average of the weights, updated every step without a host sync.

shadow <- decay_t * shadow + (1 - decay_t) * weights, with an optional warmup
of the decay, decay_t = min(decay, (1 + t) / (10 + t)), so the average is not
dominated by the random initial weights early on. Buffers (batch-norm running
statistics) are copied, not averaged. The step count lives on the host, so
computing decay_t reads nothing back from the device.
"""
import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float, warmup: bool):
        self.decay, self.warmup = decay, warmup
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.updates = 0
        self._src = list(model.parameters())
        self._dst = list(self.model.parameters())
        self._src_buffers = list(model.buffers())
        self._dst_buffers = list(self.model.buffers())

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        weight = 1.0 - self.current_decay()
        torch._foreach_lerp_(self._dst, [p.detach() for p in self._src], weight)
        for dst, src in zip(self._dst_buffers, self._src_buffers):
            dst.copy_(src)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])
