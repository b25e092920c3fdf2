"""Optimizers by name (`optimizer=`), all from torch.optim.

Each option has its own schema so a key that does not apply (betas for sgd)
is an error rather than silently ignored. Every schema inherits the common
keys of `OptimizerSchema`:

- `weight_decay` is torch's built-in decay applied inside the optimizer step
  (decoupled for adamw), to weights only. The L2 *penalty* added to the loss
  is `regularizer=l2`, and the post-step decoupled decay for any optimizer is
  `regularizer=weight_decay`; the three are kept distinct on purpose.
- `clip_norm` / `clip_value` clip gradients after backward, before the step
  (the engine unscales fp16 gradients first).
- `lr_scaling` applies the linear scaling rule once, here, when the optimizer
  is built: lr * batch_size / reference_batch.

The momentum family (momentum, nesterov) also carries a momentum warmup that
the schedule applies step by step (see schedules.py), since only the schedule
knows the step.
"""
from dataclasses import dataclass, field

import torch

from trainlab.errors import check
from trainlab.registry import Registry

OPTIMIZERS = Registry("optimizer")


@dataclass
class LRScalingSchema:
    enabled: bool = False      # linear rule: lr * batch_size / reference_batch
    reference_batch: int = 256  # batch size (examples) at which `lr` is the configured value


@dataclass
class OptimizerSchema:
    name: str = ""
    lr: float = 0.01                 # base learning rate (per step)
    weight_decay: float = 0.0        # torch's in-optimizer decay (decoupled for adamw), applied to weights only
    clip_norm: float | None = None   # clip the global L2 norm of all gradients to this (null = off)
    clip_value: float | None = None  # clip every gradient element to [-v, v] (null = off)
    lr_scaling: LRScalingSchema = field(default_factory=LRScalingSchema)

    def __post_init__(self):
        check(self.lr > 0, "lr", self.lr, "a positive learning rate")
        check(self.weight_decay >= 0, "weight_decay", self.weight_decay, "a non-negative number")
        check(self.clip_norm is None or self.clip_norm > 0, "clip_norm", self.clip_norm, "a positive norm or null")
        check(self.clip_value is None or self.clip_value > 0, "clip_value", self.clip_value,
              "a positive value or null")
        # checked here rather than in LRScalingSchema so the error names the full key
        check(self.lr_scaling.reference_batch >= 1, "lr_scaling.reference_batch", self.lr_scaling.reference_batch,
              "an integer >= 1")


@dataclass
class SGDSchema(OptimizerSchema):
    name: str = "sgd"
    lr: float = 0.1


@dataclass
class MomentumSchema(OptimizerSchema):
    name: str = "momentum"
    lr: float = 0.05
    momentum: float = 0.9               # fraction of the previous update kept (the value after warmup)
    dampening: float = 0.0              # fraction of the new gradient left out of the velocity
    momentum_start: float = 0.5         # momentum at step 0 when momentum warmup is on
    momentum_warmup_epochs: float = 0   # linear ramp momentum_start -> momentum over these epochs (0 = off)

    def __post_init__(self):
        super().__post_init__()
        check(0 <= self.momentum < 1, "momentum", self.momentum, "a fraction in [0, 1)")
        check(0 <= self.dampening < 1, "dampening", self.dampening, "a fraction in [0, 1)")
        check(0 <= self.momentum_start < 1, "momentum_start", self.momentum_start, "a fraction in [0, 1)")
        check(self.momentum_warmup_epochs >= 0, "momentum_warmup_epochs", self.momentum_warmup_epochs,
              "a non-negative number of epochs")


@dataclass
class NesterovSchema(MomentumSchema):
    name: str = "nesterov"

    def __post_init__(self):
        super().__post_init__()
        check(self.momentum > 0, "momentum", self.momentum, "a fraction in (0, 1): Nesterov needs momentum")
        check(self.dampening == 0, "dampening", self.dampening, "0: Nesterov momentum takes no dampening")


@dataclass
class AdagradSchema(OptimizerSchema):
    name: str = "adagrad"
    lr: float = 0.01
    lr_decay: float = 0.0                   # lr / (1 + (t - 1) * lr_decay) at step t
    initial_accumulator_value: float = 0.0  # starting value of the sum of squared gradients
    eps: float = 1e-10                      # added to the denominator

    def __post_init__(self):
        super().__post_init__()
        check(self.lr_decay >= 0, "lr_decay", self.lr_decay, "a non-negative number")
        check(self.initial_accumulator_value >= 0, "initial_accumulator_value", self.initial_accumulator_value,
              "a non-negative number")
        check(self.eps > 0, "eps", self.eps, "a positive number")


@dataclass
class RMSpropSchema(OptimizerSchema):
    name: str = "rmsprop"
    lr: float = 0.001
    alpha: float = 0.99      # decay rate of the running mean of squared gradients
    eps: float = 1e-8        # added to the denominator
    momentum: float = 0.0    # momentum on the scaled update (0 = none)
    centered: bool = False   # divide by the estimated variance instead of the raw second moment

    def __post_init__(self):
        super().__post_init__()
        check(0 <= self.alpha < 1, "alpha", self.alpha, "a fraction in [0, 1)")
        check(self.eps > 0, "eps", self.eps, "a positive number")
        check(0 <= self.momentum < 1, "momentum", self.momentum, "a fraction in [0, 1)")


@dataclass
class AdamSchema(OptimizerSchema):
    name: str = "adam"
    lr: float = 1e-3
    betas: list = field(default_factory=lambda: [0.9, 0.999])  # decay rates of the 1st and 2nd moment estimates
    eps: float = 1e-8        # added to the denominator
    amsgrad: bool = False    # use the running maximum of the 2nd moment (AMSGrad)

    def __post_init__(self):
        super().__post_init__()
        check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas", list(self.betas),
              "two fractions in [0, 1)")
        check(self.eps > 0, "eps", self.eps, "a positive number")


@dataclass
class AdamWSchema(AdamSchema):
    name: str = "adamw"
    weight_decay: float = 0.01  # decoupled: w <- w - lr * weight_decay * w every step


@dataclass
class AdadeltaSchema(OptimizerSchema):
    name: str = "adadelta"
    lr: float = 1.0     # multiplies the parameter-wise adaptive step (1 = the original method)
    rho: float = 0.9    # decay rate of the running means of squared gradients and updates
    eps: float = 1e-6   # added inside both square roots

    def __post_init__(self):
        super().__post_init__()
        check(0 <= self.rho < 1, "rho", self.rho, "a fraction in [0, 1)")
        check(self.eps > 0, "eps", self.eps, "a positive number")


@dataclass
class LBFGSSchema(OptimizerSchema):
    name: str = "lbfgs"
    lr: float = 1.0                        # step length (the line search picks its own when on)
    max_iter: int = 20                     # inner iterations (loss evaluations of one batch) per optimizer step
    history_size: int = 100                # curvature pairs kept to approximate the inverse Hessian
    line_search: str | None = "strong_wolfe"  # strong_wolfe or null (fixed step of size lr)
    tolerance_grad: float = 1e-7           # stop the inner loop when the largest gradient element is below this
    tolerance_change: float = 1e-9         # ... or when the loss or the step changes less than this

    def __post_init__(self):
        super().__post_init__()
        check(self.weight_decay == 0, "weight_decay", self.weight_decay,
              "0: L-BFGS has no in-optimizer decay; use regularizer=l2")
        check(self.max_iter >= 1, "max_iter", self.max_iter, "an integer >= 1")
        check(self.history_size >= 1, "history_size", self.history_size, "an integer >= 1")
        check(self.line_search in (None, "strong_wolfe"), "line_search", self.line_search, "strong_wolfe or null")
        check(self.tolerance_grad >= 0, "tolerance_grad", self.tolerance_grad, "a non-negative number")
        check(self.tolerance_change >= 0, "tolerance_change", self.tolerance_change, "a non-negative number")


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weights (dim > 1) decay; biases and norm scales/shifts do not. Frozen parameters are left out.

    Parameters named in `model.lr_multipliers` (set by transfer learning) get
    their own groups whose `lr_mult` scales the base lr in build_optimizer."""
    multipliers = getattr(model, "lr_multipliers", {})
    groups: dict[tuple, dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decays = p.dim() > 1
        key = (decays, multipliers.get(name, 1.0))
        group = groups.setdefault(key, {"params": [], "weight_decay": weight_decay if decays else 0.0,
                                        "lr_mult": key[1]})
        group["params"].append(p)
    if not groups:
        from trainlab.errors import ConfigError

        raise ConfigError("transfer.freeze", "all", "at least one trainable parameter")
    return sorted(groups.values(), key=lambda g: (-g["weight_decay"], g["lr_mult"]))


def scaled_lr(cfg, batch_size: int) -> float:
    """The base learning rate after the linear scaling rule (Goyal et al., 2017), if enabled."""
    if not cfg.lr_scaling.enabled:
        return cfg.lr
    return cfg.lr * batch_size / cfg.lr_scaling.reference_batch


def build_optimizer(cfg, model: torch.nn.Module, batch_size: int) -> torch.optim.Optimizer:
    """The optimizer for a model, with the base lr scaled to `batch_size` when lr_scaling is on."""
    optimizer = OPTIMIZERS[cfg.name].build(cfg, model)
    lr = scaled_lr(cfg, batch_size)
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)
    return optimizer


class GradientClipper:
    """Clips gradients in place: each element to [-clip_value, clip_value], then the global norm to clip_norm."""

    def __init__(self, clip_norm: float | None, clip_value: float | None):
        self.clip_norm, self.clip_value = clip_norm, clip_value

    def __call__(self, params) -> None:
        params = [p for p in params if p.grad is not None]
        if self.clip_value is not None:
            torch.nn.utils.clip_grad_value_(params, self.clip_value)
        if self.clip_norm is not None:
            # returns the pre-clip norm as a device tensor: no host sync here
            torch.nn.utils.clip_grad_norm_(params, self.clip_norm)


def gradient_clipper(cfg) -> GradientClipper | None:
    """A callable clipping gradients in place before each step, or None (no clipping configured)."""
    if cfg.clip_norm is None and cfg.clip_value is None:
        return None
    return GradientClipper(cfg.clip_norm, cfg.clip_value)


@OPTIMIZERS.register("sgd", SGDSchema)
def build_sgd(cfg, model):
    return torch.optim.SGD(param_groups(model, cfg.weight_decay), lr=cfg.lr)


@OPTIMIZERS.register("momentum", MomentumSchema)
def build_momentum(cfg, model):
    return torch.optim.SGD(param_groups(model, cfg.weight_decay), lr=cfg.lr, momentum=cfg.momentum,
                           dampening=cfg.dampening)


@OPTIMIZERS.register("nesterov", NesterovSchema)
def build_nesterov(cfg, model):
    return torch.optim.SGD(param_groups(model, cfg.weight_decay), lr=cfg.lr, momentum=cfg.momentum, nesterov=True)


@OPTIMIZERS.register("adagrad", AdagradSchema)
def build_adagrad(cfg, model):
    return torch.optim.Adagrad(param_groups(model, cfg.weight_decay), lr=cfg.lr, lr_decay=cfg.lr_decay,
                               initial_accumulator_value=cfg.initial_accumulator_value, eps=cfg.eps)


@OPTIMIZERS.register("rmsprop", RMSpropSchema)
def build_rmsprop(cfg, model):
    return torch.optim.RMSprop(param_groups(model, cfg.weight_decay), lr=cfg.lr, alpha=cfg.alpha, eps=cfg.eps,
                               momentum=cfg.momentum, centered=cfg.centered)


@OPTIMIZERS.register("adam", AdamSchema)
def build_adam(cfg, model):
    return torch.optim.Adam(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=tuple(cfg.betas),
                            eps=cfg.eps, amsgrad=cfg.amsgrad)


@OPTIMIZERS.register("adamw", AdamWSchema)
def build_adamw(cfg, model):
    return torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=tuple(cfg.betas),
                             eps=cfg.eps, amsgrad=cfg.amsgrad)


@OPTIMIZERS.register("adadelta", AdadeltaSchema)
def build_adadelta(cfg, model):
    return torch.optim.Adadelta(param_groups(model, cfg.weight_decay), lr=cfg.lr, rho=cfg.rho, eps=cfg.eps)


@OPTIMIZERS.register("lbfgs", LBFGSSchema)
def build_lbfgs(cfg, model):
    # L-BFGS takes a single parameter group (and no decay), so all parameters go in together
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.LBFGS(params, lr=cfg.lr, max_iter=cfg.max_iter, history_size=cfg.history_size,
                             line_search_fn=cfg.line_search, tolerance_grad=cfg.tolerance_grad,
                             tolerance_change=cfg.tolerance_change)
