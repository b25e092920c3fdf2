"""Building blocks shared by the architectures: a layer followed by norm,
activation and dropout in the configured order."""
from dataclasses import dataclass

from torch import nn

from trainlab.nn.activations import Activation


@dataclass
class BlockParts:
    """The per-layer choices every architecture takes from the config groups."""

    activation: Activation
    make_norm: callable      # (width, conv: bool) -> nn.Module | None
    placement: str           # norm "before" or "after" the activation
    dropout: float           # drop probability after the activation (0 = off)
    stochastic_depth: float = 0.0  # drop probability of the last residual branch (0 = off)
    input_dropout: float = 0.0     # drop probability of each input feature, before the first layer (0 = off)

    def before_first_layer(self) -> list[nn.Module]:
        """Input dropout (Srivastava et al. 2014 drop about 20% of the pixels): plain nn.Dropout, so each
        pixel is dropped on its own, in convnets too."""
        return [nn.Dropout(self.input_dropout)] if self.input_dropout > 0 else []

    def after_layer(self, width: int, conv: bool) -> list[nn.Module]:
        """Modules that follow a linear/conv layer emitting `width` units.

        With maxout the layer emits width * k units and maxout reduces them to
        `width`; norm placed before the activation then sees the wide tensor.
        """
        wide = width * self.activation.width_multiplier
        act = self.activation.make(width)
        if self.placement == "before":
            mods = [self.make_norm(wide, conv), act]
        else:
            mods = [act, self.make_norm(width, conv)]
        if self.dropout > 0:
            mods.append(nn.Dropout2d(self.dropout) if conv else nn.Dropout(self.dropout))
        return [m for m in mods if m is not None]

    def layer_width(self, width: int) -> int:
        return width * self.activation.width_multiplier
