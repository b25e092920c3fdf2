"""Models: architectures assembled from activation, norm, init and dropout choices."""
from dataclasses import replace

from torch import nn

from trainlab.nn.activations import ACTIVATIONS
from trainlab.nn.archs import ARCHS, check_forward
from trainlab.nn.blocks import BlockParts
from trainlab.nn.init import INITS
from trainlab.nn.norms import NORMS
from trainlab.nn.stochastic import check_stochastic_depth


def build_model(spec, input_shape: tuple, num_classes: int) -> nn.Module:
    """The network for a validated run spec, initialized and checked on a dummy batch.

    Everything that shapes it comes from the spec, dropout (regularizer=dropout) included: training,
    and rebuilding a run from its checkpoint's config (trainlab.engine.restore), get the same layout."""
    from trainlab.optim.regularizers import dropout_probability, input_dropout_probability

    dropout = dropout_probability(spec.regularizer or {})
    input_dropout = input_dropout_probability(spec.regularizer or {})  # mlp and cnn (checked in check_combination)
    activation = replace(ACTIVATIONS[spec.activation.name].build(spec.activation), name=spec.activation.name)
    if spec.arch.name == "torchvision" and spec.norm.name != "none":
        from trainlab.errors import ConfigError

        raise ConfigError("norm", spec.norm.name, "arch=torchvision keeps the model's own normalization; use norm=none")
    placement = getattr(spec.norm, "placement", "before")  # norm=none has no placement (and no layers to place)
    stochastic_depth = spec.regularizer["stochastic_depth"].p if "stochastic_depth" in spec.regularizer else 0.0
    parts = BlockParts(activation, NORMS[spec.norm.name].build(spec.norm), placement, dropout, stochastic_depth,
                       input_dropout)
    model = ARCHS[spec.arch.name].build(spec.arch, parts, tuple(input_shape), num_classes)
    if stochastic_depth > 0:
        check_stochastic_depth(model, spec.arch.name)
    INITS[spec.init.name].build(spec.init)(model, activation.init_nonlinearity, activation.init_param)
    check_forward(model, input_shape, spec.arch.name)
    return model
