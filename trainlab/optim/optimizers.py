"""Optimizers by name (`optimizer=`), all from torch.optim; the schemas are in trainlab.schemas.optimizer.

Each option has its own schema so a key that does not apply (betas for sgd)
is an error rather than silently ignored. The common keys every option has
(in-optimizer weight_decay, gradient clipping, lr scaling) are applied here:
`param_groups` decays weights only, `GradientClipper` clips after backward, and
`build_optimizer` applies the linear lr scaling rule once, when it is built.
"""
import torch

from trainlab.schemas.optimizer import OPTIMIZERS, OptimizerBase


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


def scaled_lr(cfg: OptimizerBase, batch_size: int) -> float:
    """The base learning rate after the linear scaling rule (Goyal et al., 2017), if enabled."""
    if not cfg.lr_scaling.enabled:
        return cfg.lr
    return cfg.lr * batch_size / cfg.lr_scaling.reference_batch


def build_optimizer(cfg: OptimizerBase, model: torch.nn.Module, batch_size: int) -> torch.optim.Optimizer:
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


def gradient_clipper(cfg: OptimizerBase) -> GradientClipper | None:
    """A callable clipping gradients in place before each step, or None (no clipping configured)."""
    if cfg.clip_norm is None and cfg.clip_value is None:
        return None
    return GradientClipper(cfg.clip_norm, cfg.clip_value)


@OPTIMIZERS.builder("sgd")
def build_sgd(cfg, model):
    return torch.optim.SGD(param_groups(model, cfg.weight_decay), lr=cfg.lr)


@OPTIMIZERS.builder("momentum")
def build_momentum(cfg, model):
    return torch.optim.SGD(param_groups(model, cfg.weight_decay), lr=cfg.lr, momentum=cfg.momentum,
                           dampening=cfg.dampening)


@OPTIMIZERS.builder("nesterov")
def build_nesterov(cfg, model):
    return torch.optim.SGD(param_groups(model, cfg.weight_decay), lr=cfg.lr, momentum=cfg.momentum, nesterov=True)


@OPTIMIZERS.builder("adagrad")
def build_adagrad(cfg, model):
    return torch.optim.Adagrad(param_groups(model, cfg.weight_decay), lr=cfg.lr, lr_decay=cfg.lr_decay,
                               initial_accumulator_value=cfg.initial_accumulator_value, eps=cfg.eps)


@OPTIMIZERS.builder("rmsprop")
def build_rmsprop(cfg, model):
    return torch.optim.RMSprop(param_groups(model, cfg.weight_decay), lr=cfg.lr, alpha=cfg.alpha, eps=cfg.eps,
                               momentum=cfg.momentum, centered=cfg.centered)


@OPTIMIZERS.builder("adam")
def build_adam(cfg, model):
    return torch.optim.Adam(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=tuple(cfg.betas),
                            eps=cfg.eps, amsgrad=cfg.amsgrad)


@OPTIMIZERS.builder("adamw")
def build_adamw(cfg, model):
    return torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=tuple(cfg.betas),
                             eps=cfg.eps, amsgrad=cfg.amsgrad)


@OPTIMIZERS.builder("adadelta")
def build_adadelta(cfg, model):
    return torch.optim.Adadelta(param_groups(model, cfg.weight_decay), lr=cfg.lr, rho=cfg.rho, eps=cfg.eps)


@OPTIMIZERS.builder("lbfgs")
def build_lbfgs(cfg, model):
    # L-BFGS takes a single parameter group (and no decay), so all parameters go in together
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.LBFGS(params, lr=cfg.lr, max_iter=cfg.max_iter, history_size=cfg.history_size,
                             line_search_fn=cfg.line_search, tolerance_grad=cfg.tolerance_grad,
                             tolerance_change=cfg.tolerance_change)
