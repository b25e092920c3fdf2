"""Seed replicates of one model, stacked along a new leading dimension and trained as one.

Every parameter of the R replicates becomes one tensor [R, ...]; the forward pass is the
replicate model's own, mapped over that dimension (torch.func.functional_call under vmap,
which turns each matmul into a batched one), on a [R, batch, ...] batch whose row r is
replicate r's own data order. The loss summed over replicates has replicate r's gradient in
slice r, so an elementwise optimizer (sgd family, adam family, rmsprop, adagrad, adadelta)
built on the stacked tensors steps every replicate exactly as its own run would; what is not
elementwise is done per slice here: gradient-norm clipping, the penalties, max-norm.

Replicate runs keep their own models, optimizers, schedules and EMA: `to_replicate` copies a
slice back before the replicate is evaluated or checkpointed (trainlab.engine.steppers.StackedStepper.sync), so
its checkpoints have the ordinary single-run format; `Stack(...)` reads them back on resume.
Dropout masks come from the global generator, one draw for all replicates (vmap
randomness="different"): each replicate gets its own masks, not the ones its sequential twin draws.

A model that is only Flatten, Linear and parameter-free elementwise modules (linear, and mlp with
the plain activations and dropout) skips vmap: its forward pass is written here as batched
matmuls (StackedLinear) and the modules themselves, which act on [R, batch, features] as they are.
Why hand-written: vmap's per-op batching costs ~15% of an 8-replicate MLP step on the CPU.
"""
import torch
from torch import nn
from torch.func import functional_call, vmap

from trainlab.optim.schedules import build_schedule


def _weight_names(model) -> list[str]:
    """Parameters the penalties and constraints act on: weights (dim > 1), as penalized_weights picks them."""
    return [n for n, p in model.named_parameters() if p.requires_grad and p.dim() > 1]


class Stack:
    def __init__(self, runs: list, components: list):
        """`runs` (trainlab.engine.run.Run) with their set-up `components`, all at the same step."""
        self.size = len(runs)
        c0, spec = components[0], runs[0].spec
        self.template = c0.model
        self.names = [n for n, _ in c0.model.named_parameters()]
        models = [dict(c.model.named_parameters()) for c in components]
        self.params = {n: torch.stack([m[n].detach() for m in models]).requires_grad_() for n in self.names}
        bufs = [dict(c.model.named_buffers()) for c in components]
        self.buffers = {n: torch.stack([b[n] for b in bufs]) for n in bufs[0]}
        self.weights = _weight_names(c0.model)
        self.biases = [n for n in self.names if n not in self.weights]
        self.loss_fn, self.penalties, self.constraints = c0.loss_fn, c0.penalties, c0.constraints
        self.clip = c0.clip
        self.optimizer = self._optimizer(c0.optimizer, [c.optimizer.state_dict() for c in components])
        self.schedule = build_schedule(spec.schedule, spec.optimizer, self.optimizer, c0.steps_per_epoch,
                                       c0.steps_per_epoch * spec.trainer.epochs)
        self.schedule.load_state_dict(c0.schedule.state_dict())
        self.ema, self.ema_updates = None, 0
        if c0.ema is not None:
            emas = [dict(c.ema.model.named_parameters()) for c in components]
            self.ema = [torch.stack([e[n].detach() for e in emas]) for n in self.names]
            self.ema_updates, self._ema = c0.ema.updates, c0.ema
        self.frozen: dict[int, list[torch.Tensor]] = {}  # replicate -> its parameters when it stopped
        self.trained_lr = None
        self._forward = vmap(self._one, randomness="different")
        self._plan = _batched_plan(c0.model)
        self._losses = vmap(self.loss_fn)
        self._penalty = vmap(self._one_penalty)
        self._no_penalty = torch.zeros(self.size, device=self.params[self.names[0]].device)  # no allocation per step

    # -- the optimizer on stacked tensors -------------------------------------------------
    def _optimizer(self, template: torch.optim.Optimizer, states: list[dict]) -> torch.optim.Optimizer:
        """The replicates' optimizer class with their param groups (decay, lr multipliers), over
        the stacked tensors; their states stacked when they hold any (a resumed group)."""
        by_id = {id(p): self.params[n] for n, p in self.template.named_parameters()}
        implementation = ("params", "initial_lr", "foreach", "fused")
        groups = [{**{k: v for k, v in g.items() if k not in implementation},
                   "params": [by_id[id(p)] for p in g["params"]]} for g in template.param_groups]
        defaults = {k: v for k, v in template.defaults.items() if k not in ("foreach", "fused")}
        optimizer = _fused_or_foreach(type(template), groups, defaults)
        if states[0]["state"]:
            shapes = [p.shape for g in groups for p in g["params"]]
            stacked = {"param_groups": states[0]["param_groups"], "state": {}}
            for idx, first in states[0]["state"].items():
                stacked["state"][idx] = {k: torch.stack([s["state"][idx][k] for s in states])
                                         if _per_element(v, shapes[idx][1:]) else v for k, v in first.items()}
            optimizer.load_state_dict(stacked)
        return optimizer

    def optimizer_state(self, r: int) -> dict:
        """Replicate r's slice of the optimizer state, in its own optimizer's format."""
        state = self.optimizer.state_dict()
        shapes = [p.shape for g in self.optimizer.param_groups for p in g["params"]]
        return {"param_groups": state["param_groups"],
                "state": {idx: {k: v[r].clone() if _per_element(v, shapes[idx]) else
                                (v.clone() if torch.is_tensor(v) else v) for k, v in s.items()}
                          for idx, s in state["state"].items()}}

    # -- one step -----------------------------------------------------------------------------
    def _one(self, params: dict, buffers: dict, x: torch.Tensor, y: torch.Tensor):
        scores = functional_call(self.template, (params, buffers), (x,))
        return scores, self.loss_fn(scores.float(), y), self._one_penalty(params)

    def _one_penalty(self, params: dict) -> torch.Tensor:
        penalty = torch.zeros((), device=params[self.names[0]].device)
        for pen in self.penalties:  # Penalty.__call__ on this replicate's slices
            names = self.weights + (self.biases if pen.extra else [])
            penalty = penalty + pen.strength * sum(pen.term(params[n]) for n in names)
        return penalty

    def forward(self, x: torch.Tensor, y: torch.Tensor):
        """(scores [R, batch, classes], data losses [R], penalties [R]) of every replicate on its batch."""
        if self._plan is None:
            return self._forward(self.params, self.buffers, x, y)
        h = x
        for name, module in self._plan:
            if name is None:
                h = module(h)
            elif isinstance(module, nn.Linear):
                h = StackedLinear.apply(h, self.params[f"{name}.weight"], self.params[f"{name}.bias"])
            else:  # Flatten(1): every example's features, replicates kept apart
                h = h.flatten(2)
        penalty = self._penalty(self.params) if self.penalties else self._no_penalty
        return h, self._losses(h.float(), y), penalty

    def step(self, x: torch.Tensor, y: torch.Tensor):
        """One optimizer step of every replicate on its batch x[r], y[r]: (scores, data losses [R],
        penalties [R])."""
        self.optimizer.zero_grad(set_to_none=True)
        scores, data_loss, penalty = self.forward(x, y)
        total = data_loss + penalty if self.penalties else data_loss
        total.sum().backward()  # slice r of each gradient is replicate r's own
        if self.clip is not None:
            self._clip()
        self.optimizer.step()
        lr = self.optimizer.param_groups[0]["lr"]
        self.trained_lr = lr
        if self.constraints:
            # (R, out, ...) -> (R * out, ...): max-norm's rows and decay stay one replicate's each
            flat = [self.params[n].detach().flatten(0, 1) for n in self.weights]
            for constrain in self.constraints:
                constrain(flat, lr)
        if self.ema is not None:
            self._update_ema()
        self.schedule.step()
        self._refreeze()
        return scores, data_loss, penalty

    @torch.no_grad()
    def _clip(self) -> None:
        """GradientClipper per replicate: elementwise value clipping, then each replicate's global norm."""
        grads = [p.grad for p in self.params.values() if p.grad is not None]
        if self.clip.clip_value is not None:
            for g in grads:
                g.clamp_(-self.clip.clip_value, self.clip.clip_value)
        if self.clip.clip_norm is not None:
            norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads], dim=1).norm(dim=1)  # [R]
            coef = (self.clip.clip_norm / (norms + 1e-6)).clamp(max=1.0)
            for g in grads:
                g.mul_(coef.view(-1, *[1] * (g.dim() - 1)))

    @torch.no_grad()
    def _update_ema(self) -> None:
        self._ema.updates = self.ema_updates  # current_decay reads the count
        weight = 1.0 - self._ema.current_decay()
        torch._foreach_lerp_(self.ema, [self.params[n].detach() for n in self.names], weight)
        self.ema_updates += 1

    # -- replicates leaving the group -------------------------------------------------------
    def freeze(self, r: int) -> None:
        """Replicate r has stopped (early stopping, divergence): its weights stay as they are."""
        self.frozen[r] = [self.params[n].detach()[r].clone() for n in self.names]

    @torch.no_grad()
    def _refreeze(self) -> None:
        for r, saved in self.frozen.items():
            for n, value in zip(self.names, saved):
                self.params[n][r] = value

    # -- back into a replicate's own objects --------------------------------------------------
    @torch.no_grad()
    def to_replicate(self, r: int, c, grads: bool = False, full: bool = True) -> None:
        """Copy slice r into replicate r's model (and its gradients); with `full`, also its optimizer,
        schedule and EMA, so its checkpoint is the one its own run would write."""
        for n, p in c.model.named_parameters():
            p.copy_(self.params[n][r])
            if grads:
                g = self.params[n].grad
                p.grad = None if g is None else g[r].clone()
        if not full:
            return
        c.optimizer.load_state_dict(self.optimizer_state(r))
        c.schedule.load_state_dict(self.schedule.state_dict())
        if self.ema is not None:
            for p, shadow in zip(c.ema.model.parameters(), self.ema):
                p.copy_(shadow[r])
            c.ema.updates = self.ema_updates


class StackedLinear(torch.autograd.Function):
    """R linear layers at once: h [R, batch, in], weight [R, out, in], bias [R, out] -> [R, batch, out].

    Why not autograd's own backward of baddbmm(bias, h, weight.mT): it computes each weight's gradient
    as (h.mT @ grad) and hands back its transpose, which the gradient accumulation then copies into
    the weight's layout, a copy per weight per step (~1 ms of a 6-7 ms 8-replicate MLP step on the
    CPU). Here it is grad.mT @ h, already in the weight's layout, as nn.Linear's own backward does."""

    @staticmethod
    def forward(h, weight, bias):
        return torch.baddbmm(bias.unsqueeze(1), h, weight.mT)

    @staticmethod
    def setup_context(ctx, inputs, output):
        h, weight, _ = inputs
        ctx.save_for_backward(h, weight)

    @staticmethod
    def backward(ctx, grad):
        h, weight = ctx.saved_tensors
        grad_h = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        grad_weight = torch.bmm(grad.mT, h) if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum(1) if ctx.needs_input_grad[2] else None
        return grad_h, grad_weight, grad_bias


# Modules with no parameters that act on each value alone: the same on [R, batch, features]
# as on [batch, features]. Dropout draws one mask element per value, so each replicate its own.
ELEMENTWISE = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.SELU, nn.LeakyReLU, nn.ELU, nn.Softplus, nn.GELU,
               nn.Dropout, nn.Identity)


def _batched_plan(model: nn.Module) -> list[tuple] | None:
    """The model as (name, module) steps for Stack.forward's batched path, or None (vmap it):
    a Sequential of Flatten(1), Linear with bias, and ELEMENTWISE modules (by exact type; name None)."""
    if type(model) is not nn.Sequential:
        return None
    plan = []
    for name, module in model.named_children():
        if type(module) is nn.Linear and module.bias is not None:
            plan.append((name, module))
        elif type(module) is nn.Flatten and module.start_dim == 1 and module.end_dim == -1:
            plan.append((name, module))
        elif type(module) in ELEMENTWISE and not list(module.buffers()):
            plan.append((None, module))
        else:
            return None
    return plan


def _fused_or_foreach(cls, groups: list[dict], defaults: dict) -> torch.optim.Optimizer:
    """The optimizer over the stacked tensors with torch's fused kernels where the class has them
    (sgd family, adam, adamw, adagrad): ~20% of an 8-replicate MLP step on the CPU. They round
    differently from the replicates' own single-tensor steps (measured: 3e-7 after 6 Adam steps,
    inside the 1e-6 the twin tests allow); the others take the foreach kernels (the same math).
    Whether this class has a fused kernel on this device (Adagrad's is CPU-only, say) shows only
    at the first step, so a throwaway one-element optimizer takes one step first."""
    probe = torch.zeros(1, device=groups[0]["params"][0].device, requires_grad=True)
    probe.grad = torch.zeros_like(probe)
    try:
        cls([probe], **defaults, fused=True).step()
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this class or device
        return cls(groups, **defaults, foreach=True)
    return cls(groups, **defaults, fused=True)


def _per_element(value, shape) -> bool:
    """An optimizer state entry with one value per parameter element (exp_avg, momentum_buffer),
    as opposed to a per-tensor scalar (Adam's step)."""
    return torch.is_tensor(value) and value.dim() > 0 and value.shape == shape
