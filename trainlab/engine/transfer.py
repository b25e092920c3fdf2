"""Transfer learning: start from saved weights, freeze by name, fine-tune the rest slower.

The source is a trainlab checkpoint (best.pt / last.pt) or a plain state-dict
file (e.g. torchvision weights saved locally), loaded with weights_only=True.
Tensors are matched by name and shape, so a classifier head sized for another
number of classes is left at its fresh initialization (replaced).
"""
import fnmatch
import logging
from pathlib import Path

import torch
from torch import nn

from trainlab.engine import checkpoint as ckpt
from trainlab.errors import ConfigError
from trainlab.schemas.transfer import TransferSchema

log = logging.getLogger("trainlab")


def head_parameter_names(model: nn.Module) -> set[str]:
    """The classifier head: the parameters of the last Linear layer."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = name
    if last is None:
        return set()
    return {f"{last}.{n}" if last else n for n, _ in model.get_submodule(last).named_parameters()}


def load_state(path: Path) -> dict:
    """The tensors of a trainlab checkpoint (verified against its digest) or of a plain state dict."""
    state = ckpt.load(path, plain_ok=True)
    return state["model"] if "config" in state and isinstance(state.get("model"), dict) else state


def by_position(source: dict, own: dict) -> dict:
    """Source tensors renamed to this model's names when the two differ only in parameter-free
    layers (a run trained with dropout has its Dropout modules in the Sequential, which shifts
    the indices of every later layer): the same tensors in the same order, with the same leaf
    names (weight, bias, running_mean...). Anything else: {} (then only names decide)."""
    ours, theirs = list(own), list(source)
    if len(ours) != len(theirs) or set(ours) == set(theirs):
        return {}
    if any(a.rsplit(".", 1)[-1] != b.rsplit(".", 1)[-1] for a, b in zip(ours, theirs)):
        return {}
    return {a: source[b] for a, b in zip(ours, theirs)}


def apply_transfer(model: nn.Module, cfg: TransferSchema) -> None:
    """Load matching weights, freeze by pattern, and tag lr multipliers (read by the optimizer)."""
    head = head_parameter_names(model)
    matched: dict = {}
    if cfg.weights:
        source = load_state(Path(cfg.weights).expanduser())
        own = model.state_dict()
        source = by_position(source, own) or source
        matched = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape
                   and not (cfg.reset_head and k in head)}
        skipped = sorted(k for k in own if k not in matched)
        if not matched:
            raise ConfigError("transfer.weights", cfg.weights, "weights for this architecture (no tensor name and shape matched)")
        if cfg.strict and any(k not in head for k in skipped if k in dict(model.named_parameters())):
            raise ConfigError("transfer.weights", cfg.weights, f"weights for every non-head tensor (missing: {', '.join(skipped[:5])})")
        model.load_state_dict(matched, strict=False)
        log.info(f"transfer: loaded {len(matched)} tensors from {cfg.weights}; kept fresh: {', '.join(skipped) or 'none'}")
    names = [n for n, _ in model.named_parameters()]

    def frozen_by(name: str, pattern: str) -> bool:
        return (name not in head) if pattern == "backbone" else fnmatch.fnmatch(name, pattern)

    for pattern in cfg.freeze:
        if not any(frozen_by(n, pattern) for n in names):
            raise ConfigError("transfer.freeze", pattern, "backbone or a pattern matching parameter names, e.g. "
                              + ", ".join(names[:4]))
    fresh = [n for n in names if cfg.weights and n not in head and n not in matched
             and any(frozen_by(n, pattern) for pattern in cfg.freeze)]
    if fresh:  # frozen at their random initialization, they would never learn anything
        raise ConfigError("transfer.freeze", list(cfg.freeze), f"parameters that {cfg.weights} loaded; these kept "
                          f"their fresh initialization (no tensor of that name and shape): {', '.join(fresh[:4])}")
    frozen = 0
    for name, p in model.named_parameters():
        if any(frozen_by(name, pattern) for pattern in cfg.freeze):
            p.requires_grad_(False)
            frozen += p.numel()
    if frozen:
        log.info(f"transfer: froze {frozen:,} parameters matching {list(cfg.freeze)}")
    model.lr_multipliers = {n: cfg.backbone_lr_mult for n in names if n not in head and cfg.backbone_lr_mult != 1.0}
