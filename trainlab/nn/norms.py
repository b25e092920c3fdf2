"""Normalization layers by name (`norm=`), for dense (N, W) and conv (N, C, H, W) features.

Each builder returns `make(width, conv) -> nn.Module | None`, called once per hidden layer.
"""
from torch import nn

from trainlab.errors import ConfigError
from trainlab.schemas.norm import (NORMS, BatchNormSchema, GroupNormSchema, InstanceNormSchema, LayerNormSchema,
                                   NoNormSchema)


@NORMS.builder("none")
def build_none(cfg: NoNormSchema):
    return lambda width, conv: None


@NORMS.builder("batchnorm")
def build_batchnorm(cfg: BatchNormSchema):
    def make(width, conv):
        layer = nn.BatchNorm2d if conv else nn.BatchNorm1d
        return layer(width, momentum=cfg.momentum, affine=cfg.affine)

    return make


@NORMS.builder("layernorm")
def build_layernorm(cfg: LayerNormSchema):
    def make(width, conv):
        # For conv features "layer norm" normalizes each sample over (C, H, W),
        # which is GroupNorm with a single group.
        if conv:
            return nn.GroupNorm(1, width, affine=cfg.affine)
        return nn.LayerNorm(width, elementwise_affine=cfg.affine)

    return make


@NORMS.builder("instancenorm")
def build_instancenorm(cfg: InstanceNormSchema):
    def make(width, conv):
        if not conv:
            raise ConfigError("norm", "instancenorm", "instance norm needs conv feature maps; use layernorm for arch=mlp/linear")
        return nn.InstanceNorm2d(width, affine=cfg.affine)

    return make


@NORMS.builder("groupnorm")
def build_groupnorm(cfg: GroupNormSchema):
    def make(width, conv):
        if width % cfg.groups:
            raise ConfigError("norm.groups", cfg.groups, f"a divisor of every layer width (got a layer of {width})")
        return nn.GroupNorm(cfg.groups, width, affine=cfg.affine)

    return make
