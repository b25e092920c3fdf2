"""Normalization layers by name (`norm=`), for dense (N, W) and conv (N, C, H, W) features."""
from dataclasses import dataclass

from torch import nn

from trainlab.errors import ConfigError, check
from trainlab.registry import Registry

NORMS = Registry("norm")
PLACEMENTS = ("before", "after")


@dataclass
class NormSchema:
    name: str = "none"
    placement: str = "before"  # relative to the activation: "before" (as in the BN paper) or "after"
    affine: bool = True        # learnable scale and shift
    groups: int = 8            # groupnorm only: channels are split into this many groups
    momentum: float = 0.1      # batchnorm only: running-statistics update rate

    def __post_init__(self):
        check(self.placement in PLACEMENTS, "placement", self.placement, "one of before, after")
        check(self.groups >= 1, "groups", self.groups, "an integer >= 1")
        check(0 < self.momentum <= 1, "momentum", self.momentum, "a rate in (0, 1]")


def _none(cfg, width, conv):
    return None


def _batchnorm(cfg, width, conv):
    layer = nn.BatchNorm2d if conv else nn.BatchNorm1d
    return layer(width, momentum=cfg.momentum, affine=cfg.affine)


def _layernorm(cfg, width, conv):
    # For conv features "layer norm" normalizes each sample over (C, H, W),
    # which is GroupNorm with a single group.
    return nn.GroupNorm(1, width, affine=cfg.affine) if conv else nn.LayerNorm(width, elementwise_affine=cfg.affine)


def _instancenorm(cfg, width, conv):
    if not conv:
        raise ConfigError("norm", "instancenorm", "instance norm needs conv feature maps; use layernorm for arch=mlp/linear")
    return nn.InstanceNorm2d(width, affine=cfg.affine)


def _groupnorm(cfg, width, conv):
    if width % cfg.groups:
        raise ConfigError("norm.groups", cfg.groups, f"a divisor of every layer width (got a layer of {width})")
    return nn.GroupNorm(cfg.groups, width, affine=cfg.affine)


for _name, _make in [("none", _none), ("batchnorm", _batchnorm), ("layernorm", _layernorm),
                     ("instancenorm", _instancenorm), ("groupnorm", _groupnorm)]:
    NORMS.register(_name, NormSchema)(lambda cfg, _make=_make: (lambda width, conv: _make(cfg, width, conv)))
