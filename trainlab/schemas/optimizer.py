"""optimizer=: one schema per option (the builders are in trainlab.optim.optimizers).

Every option inherits the keys of `OptimizerBase`. Three kinds of decay are kept
distinct on purpose: `weight_decay` here is torch's built-in decay inside the
optimizer step (decoupled for adamw), to weights only; the L2 *penalty* added to
the loss is `regularizer=l2`; the post-step decoupled decay for any optimizer is
`regularizer=weight_decay`. `clip_norm` / `clip_value` clip gradients after
backward, before the step (the engine unscales fp16 gradients first).
`lr_scaling` applies the linear scaling rule once, when the optimizer is built.

The momentum family (momentum, nesterov) also carries a momentum warmup that the
schedule applies step by step (trainlab.optim.schedules), since only the schedule
knows the step.
"""
from dataclasses import dataclass, field

from trainlab.errors import check
from trainlab.registry import Registry

OPTIMIZERS = Registry("optimizer", builders="trainlab.optim.optimizers")


def _fraction(value, key: str) -> None:
    check(0 <= value < 1, key, value, "a fraction in [0, 1)")


def _positive(value, key: str) -> None:
    check(value > 0, key, value, "a positive number")


@dataclass
class LRScalingSchema:
    enabled: bool = False       # linear rule: lr * batch_size / reference_batch
    reference_batch: int = 256  # examples per batch at which lr applies unscaled


@dataclass
class OptimizerBase:
    """The keys every optimizer has: learning rate, in-optimizer decay, gradient clipping, lr scaling."""

    name: str = ""
    lr: float = 0.01                 # learning rate (per step)
    weight_decay: float = 0.0        # in-optimizer decay of weights, added to the gradient
    clip_norm: float | None = None   # clip the global gradient L2 norm to this (null = off)
    clip_value: float | None = None  # clip each gradient element to [-v, v] (null = off)
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


@OPTIMIZERS.option("sgd", "Plain stochastic gradient descent: w <- w - lr * g.")
@dataclass
class SGDSchema(OptimizerBase):
    name: str = "sgd"
    lr: float = 0.1  # learning rate (per step)
    weight_decay: float = 0.0  # in-optimizer decay of weights, added to the gradient (the L2 penalty is regularizer=l2)


@dataclass
class MomentumBase(OptimizerBase):
    """Heavy-ball and Nesterov momentum, with a momentum warmup the schedule applies step by step."""

    lr: float = 0.05  # learning rate (per step)
    weight_decay: float = 0.0           # in-optimizer decay of weights, goes through the velocity
    momentum: float = 0.9               # fraction of the previous update kept (the value after momentum warmup)
    momentum_start: float = 0.5         # momentum at the first step when momentum warmup is on
    momentum_warmup_epochs: float = 0   # epochs of linear ramp momentum_start -> momentum (0 = off)

    def __post_init__(self):
        super().__post_init__()
        _fraction(self.momentum, "momentum")
        _fraction(self.momentum_start, "momentum_start")
        check(self.momentum_warmup_epochs >= 0, "momentum_warmup_epochs", self.momentum_warmup_epochs,
              "a non-negative number of epochs")


@OPTIMIZERS.option("momentum", "SGD with (heavy-ball) momentum: v <- momentum * v + (1 - dampening) * g; w <- w - lr * v.")
@dataclass
class MomentumSchema(MomentumBase):
    name: str = "momentum"
    dampening: float = 0.0  # fraction of each new gradient left out of the velocity

    def __post_init__(self):
        super().__post_init__()
        _fraction(self.dampening, "dampening")


@OPTIMIZERS.option("nesterov", "SGD with Nesterov momentum: the gradient step looks ahead along the velocity.")
@dataclass
class NesterovSchema(MomentumBase):
    name: str = "nesterov"

    def __post_init__(self):
        super().__post_init__()
        check(self.momentum > 0, "momentum", self.momentum, "a fraction in (0, 1): Nesterov needs momentum")


@OPTIMIZERS.option("adagrad", "Adagrad: per-parameter steps lr / sqrt(sum of all past squared gradients).")
@dataclass
class AdagradSchema(OptimizerBase):
    name: str = "adagrad"
    lr: float = 0.01  # learning rate (per step)
    lr_decay: float = 0.0                   # lr / (1 + (t - 1) * lr_decay) at step t
    initial_accumulator_value: float = 0.0  # starting sum of squared gradients
    eps: float = 1e-10                      # added to the denominator

    def __post_init__(self):
        super().__post_init__()
        check(self.lr_decay >= 0, "lr_decay", self.lr_decay, "a non-negative number")
        check(self.initial_accumulator_value >= 0, "initial_accumulator_value", self.initial_accumulator_value,
              "a non-negative number")
        _positive(self.eps, "eps")


@OPTIMIZERS.option("rmsprop", "RMSprop: per-parameter steps lr / sqrt(running mean of squared gradients).")
@dataclass
class RMSpropSchema(OptimizerBase):
    name: str = "rmsprop"
    lr: float = 0.001  # learning rate (per step)
    alpha: float = 0.99      # decay rate (per step) of the running mean of squared gradients
    eps: float = 1e-8        # added to the denominator
    momentum: float = 0.0    # momentum on the scaled update (0 = none)
    centered: bool = False   # divide by the running variance estimate instead of the raw second moment

    def __post_init__(self):
        super().__post_init__()
        _fraction(self.alpha, "alpha")
        _positive(self.eps, "eps")
        _fraction(self.momentum, "momentum")


@OPTIMIZERS.option("adam", "Adam: bias-corrected running estimates of the gradient's first and second moments.")
@dataclass
class AdamSchema(OptimizerBase):
    name: str = "adam"
    lr: float = 1e-3  # learning rate (per step)
    weight_decay: float = 0.0  # coupled: added to the gradient, so it is rescaled by the 2nd moment (see adamw)
    betas: list = field(default_factory=lambda: [0.9, 0.999])  # decay rates (per step) of the 1st and 2nd moment estimates
    eps: float = 1e-8        # added to the denominator
    amsgrad: bool = False    # AMSGrad: divide by the running maximum of the 2nd moment

    def __post_init__(self):
        super().__post_init__()
        check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas", list(self.betas),
              "two fractions in [0, 1)")
        _positive(self.eps, "eps")


@OPTIMIZERS.option("adamw", "AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019).")
@dataclass
class AdamWSchema(AdamSchema):
    name: str = "adamw"
    weight_decay: float = 0.01  # decoupled: w <- w - lr * weight_decay * w each step, outside the adaptive scaling


@OPTIMIZERS.option("adadelta", "Adadelta: steps sized by the ratio of running RMS of past updates to running RMS of gradients.")
@dataclass
class AdadeltaSchema(OptimizerBase):
    name: str = "adadelta"
    lr: float = 1.0     # multiplier of the adaptive step (1 = the original method, no lr to tune)
    rho: float = 0.9    # decay rate (per step) of the running means of squared gradients and updates
    eps: float = 1e-6   # added inside both square roots

    def __post_init__(self):
        super().__post_init__()
        _fraction(self.rho, "rho")
        _positive(self.eps, "eps")


@OPTIMIZERS.option("lbfgs", "L-BFGS: quasi-Newton steps from a short history of gradient differences.")
@dataclass
class LBFGSSchema(OptimizerBase):
    """Each optimizer step re-evaluates the loss of the SAME batch up to max_iter times,
    so it suits full-batch or large-batch training (e.g. trainer.batch_size=100000)
    of a deterministic model: no dropout, no augmentation, no noisy batch norm in
    small batches; otherwise the curvature estimates and the line search see a
    different function on every evaluation. Use regularizer=l2 for decay."""

    name: str = "lbfgs"
    lr: float = 1.0                        # step length; with the line search on it is the first trial step
    weight_decay: float = 0.0              # must stay 0: L-BFGS has no in-optimizer decay
    max_iter: int = 20                     # inner iterations (loss evaluations on one batch) per optimizer step
    history_size: int = 100                # curvature pairs kept to approximate the inverse Hessian
    line_search: str | None = "strong_wolfe"  # strong_wolfe or null (fixed steps of size lr: unstable unless lr is small)
    tolerance_grad: float = 1e-7           # stop the inner loop when every gradient element is below this
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
