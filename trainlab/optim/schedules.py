"""Learning-rate schedules by name (`schedule=`), as pure functions of the step.

A schedule is a picklable callable `factor(step) -> float` multiplying the base
learning rate; torch's LambdaLR applies it. LambdaLR's state_dict holds the
step counter and a copy of the callable's attributes, so anything a schedule
keeps (plateau's counters) must be a plain attribute: it then checkpoints as
plain numbers and loads under `torch.load(weights_only=True)`.

Steps count optimizer steps from 0: step s (0-based) runs at base_lr * factor(s).
Units are explicit: every length is in `unit` (steps or epochs) and converted
to steps once, up front; t = step / steps_per_unit below is fractional.

Warmup composes with any schedule: during the first `warmup` units the
schedule's factor is multiplied by a linear ramp from `warmup_start` to 1 (or
held at `warmup_start`); the schedule itself keeps counting from step 0, so
its closed form holds unchanged after warmup.

The momentum family of optimizers carries a momentum warmup; `Schedule.step()`
applies it, since the schedule is what knows the step.
"""
import bisect
import math

import torch

from trainlab.schemas.schedule import (MONITORS, SCHEDULES, CosineSchema, CyclicSchema, ExponentialSchema,
                                       InverseTimeSchema, MultiStepSchema, OneCycleSchema, PlateauSchema,
                                       ScheduleBase, StepSchema)


# -- factors: base lr multipliers, pure functions of the step -----------------------------------------
@SCHEDULES.builder("constant")
class Factor:
    """factor(step) = warmup(step) * shape(step); plain attributes so LambdaLR can checkpoint it."""

    def __init__(self, cfg: ScheduleBase, steps_per_epoch: int, total_steps: int):
        self.per_unit = steps_per_epoch if cfg.unit == "epochs" else 1
        self.total_steps = total_steps
        self.warmup_steps = cfg.warmup * self.per_unit
        self.warmup_mode, self.warmup_start = cfg.warmup_mode, cfg.warmup_start

    def units(self, step: int) -> float:
        """The step in the schedule's unit (fractional for epochs)."""
        return step / self.per_unit

    def warmup(self, step: int) -> float:
        if step >= self.warmup_steps:
            return 1.0
        if self.warmup_mode == "constant":
            return self.warmup_start
        return self.warmup_start + (1 - self.warmup_start) * step / self.warmup_steps

    def shape(self, step: int) -> float:
        return 1.0

    def on_eval(self, metrics: dict) -> None:
        """Step-driven schedules ignore evaluations; metric-driven ones override this."""

    def __call__(self, step: int) -> float:
        return self.warmup(step) * self.shape(step)


@SCHEDULES.builder("step")
class StepFactor(Factor):
    """gamma ** floor(t / step_size)"""

    def __init__(self, cfg: StepSchema, steps_per_epoch: int, total_steps: int):
        super().__init__(cfg, steps_per_epoch, total_steps)
        self.step_size, self.gamma = cfg.step_size, cfg.gamma

    def shape(self, step):
        return self.gamma ** math.floor(self.units(step) / self.step_size)


@SCHEDULES.builder("multistep")
class MultiStepFactor(Factor):
    """gamma ** (number of milestones <= t)"""

    def __init__(self, cfg: MultiStepSchema, steps_per_epoch: int, total_steps: int):
        super().__init__(cfg, steps_per_epoch, total_steps)
        self.milestone_steps, self.gamma = [m * self.per_unit for m in cfg.milestones], cfg.gamma

    def shape(self, step):
        return self.gamma ** bisect.bisect_right(self.milestone_steps, step)


@SCHEDULES.builder("exponential")
class ExponentialFactor(Factor):
    """exp(-k * t)"""

    def __init__(self, cfg: ExponentialSchema, steps_per_epoch: int, total_steps: int):
        super().__init__(cfg, steps_per_epoch, total_steps)
        self.k = cfg.k

    def shape(self, step):
        return math.exp(-self.k * self.units(step))


@SCHEDULES.builder("inverse_time")
class InverseTimeFactor(Factor):
    """1 / (1 + k * t)"""

    def __init__(self, cfg: InverseTimeSchema, steps_per_epoch: int, total_steps: int):
        super().__init__(cfg, steps_per_epoch, total_steps)
        self.k = cfg.k

    def shape(self, step):
        return 1.0 / (1.0 + self.k * self.units(step))


@SCHEDULES.builder("cosine")
class CosineFactor(Factor):
    """min + (1 - min) * (1 + cos(pi * step / total_steps)) / 2: from 1 to min_factor over the run."""

    def __init__(self, cfg: CosineSchema, steps_per_epoch: int, total_steps: int):
        super().__init__(cfg, steps_per_epoch, total_steps)
        self.min_factor = cfg.min_factor

    def shape(self, step):
        progress = min(step / max(self.total_steps, 1), 1.0)
        return self.min_factor + (1 - self.min_factor) * (1 + math.cos(math.pi * progress)) / 2


@SCHEDULES.builder("cyclic")
class CyclicFactor(Factor):
    """Triangular: linear base_factor -> 1 over the first half of each cycle, back to base_factor over the second."""

    def __init__(self, cfg: CyclicSchema, steps_per_epoch: int, total_steps: int):
        super().__init__(cfg, steps_per_epoch, total_steps)
        self.base_factor, self.cycle_length = cfg.base_factor, cfg.cycle_length

    def shape(self, step):
        phase = (self.units(step) / self.cycle_length) % 1.0  # position within the cycle, in [0, 1)
        height = 1.0 - abs(2.0 * phase - 1.0)                  # 0 at the ends, 1 in the middle
        return self.base_factor + (1.0 - self.base_factor) * height


@SCHEDULES.builder("onecycle")
class OneCycleFactor(Factor):
    """torch's OneCycleLR (two phases) as a factor of the peak lr: up from 1/div_factor to 1 over
    pct_start of training, then down to 1/(div_factor * final_div_factor) at the last step."""

    def __init__(self, cfg: OneCycleSchema, steps_per_epoch: int, total_steps: int):
        super().__init__(cfg, steps_per_epoch, total_steps)
        self.start = 1.0 / cfg.div_factor
        self.end = self.start / cfg.final_div_factor
        self.peak_step = cfg.pct_start * total_steps - 1   # same phase boundaries as OneCycleLR
        self.last_step = total_steps - 1
        self.anneal = cfg.anneal

    def _interpolate(self, begin: float, end: float, fraction: float) -> float:
        if self.anneal == "cos":
            return end + (begin - end) / 2.0 * (math.cos(math.pi * fraction) + 1)
        return begin + (end - begin) * fraction

    def shape(self, step):
        if step <= self.peak_step:
            return self._interpolate(self.start, 1.0, step / self.peak_step if self.peak_step > 0 else 1.0)
        span = self.last_step - self.peak_step
        fraction = min((step - self.peak_step) / span, 1.0) if span > 0 else 1.0
        return self._interpolate(1.0, self.end, fraction)


@SCHEDULES.builder("plateau")
class PlateauFactor(Factor):
    """A multiplier reduced by `factor` whenever the monitored metric stalls for more than `patience`
    evaluations (ReduceLROnPlateau's rules); its counters are plain attributes, so they checkpoint."""

    def __init__(self, cfg: PlateauSchema, steps_per_epoch: int, total_steps: int, base_lr: float):
        super().__init__(cfg, steps_per_epoch, total_steps)
        self.monitor, self.mode = cfg.monitor, MONITORS[cfg.monitor]
        self.reduce_by, self.patience, self.cooldown = cfg.factor, cfg.patience, cfg.cooldown
        self.threshold, self.threshold_mode = cfg.threshold, cfg.threshold_mode
        self.min_scale = cfg.min_lr / base_lr
        self.scale = 1.0                 # current reduction of the base lr
        self.best = math.inf if self.mode == "min" else -math.inf
        self.bad_evals = 0               # evaluations since the last improvement
        self.cooldown_left = 0
        self.reductions = 0

    def improved(self, value: float) -> bool:
        if self.threshold_mode == "rel":
            margin = abs(self.best) * self.threshold if math.isfinite(self.best) else 0.0
        else:
            margin = self.threshold
        return value < self.best - margin if self.mode == "min" else value > self.best + margin

    def on_eval(self, metrics: dict) -> None:
        value = float(metrics[self.monitor])
        if self.improved(value):  # NaN never improves
            self.best, self.bad_evals = value, 0
        else:
            self.bad_evals += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.bad_evals = 0  # evaluations during cooldown do not count
        if self.bad_evals > self.patience:
            reduced = max(self.scale * self.reduce_by, self.min_scale)
            if reduced < self.scale:
                self.scale, self.reductions = reduced, self.reductions + 1
            self.cooldown_left, self.bad_evals = self.cooldown, 0

    def shape(self, step):
        return self.scale


# -- momentum warmup -------------------------------------------------------------------------------
class MomentumRamp:
    """Linear momentum warmup: momentum_start -> momentum over the first warmup steps, then constant."""

    def __init__(self, start: float, target: float, warmup_steps: float):
        self.start, self.target, self.warmup_steps = start, target, warmup_steps

    def __call__(self, step: int) -> float:
        if step >= self.warmup_steps:
            return self.target
        return self.start + (self.target - self.start) * step / self.warmup_steps


def momentum_ramp(optimizer_cfg, steps_per_epoch: int) -> MomentumRamp | None:
    warmup_epochs = getattr(optimizer_cfg, "momentum_warmup_epochs", 0)
    if not warmup_epochs:
        return None
    return MomentumRamp(optimizer_cfg.momentum_start, optimizer_cfg.momentum, warmup_epochs * steps_per_epoch)


# -- what the engine drives ------------------------------------------------------------------------
class Schedule:
    """`step()` after every optimizer step, `on_eval(metrics)` after every evaluation.

    The learning rate is base_lr * factor(step) (LambdaLR); the momentum, when
    the optimizer has a momentum warmup, is ramp(step). Both are functions of
    LambdaLR's step counter, which is the only state besides the factor's own.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, factor: Factor, momentum: MomentumRamp | None = None):
        self.optimizer, self.factor, self.momentum = optimizer, factor, momentum
        self.lambda_lr = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        self._apply_momentum()

    @property
    def steps(self) -> int:
        """Optimizer steps taken so far (the step the next optimizer step runs at)."""
        return self.lambda_lr.last_epoch

    def step(self) -> None:
        self.lambda_lr.step()
        self._apply_momentum()

    def on_eval(self, metrics: dict) -> None:
        self.factor.on_eval(metrics)
        self._apply_lr()  # a plateau reduction takes effect from the very next step

    def _apply_lr(self) -> None:
        for group, base_lr in zip(self.optimizer.param_groups, self.lambda_lr.base_lrs):
            group["lr"] = base_lr * self.factor(self.steps)

    def _apply_momentum(self) -> None:
        if self.momentum is not None:
            for group in self.optimizer.param_groups:
                group["momentum"] = self.momentum(self.steps)

    def state_dict(self) -> dict:
        return {"lambda_lr": self.lambda_lr.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.lambda_lr.load_state_dict(state["lambda_lr"])
        self._apply_lr()
        self._apply_momentum()


def build_schedule(cfg, optimizer_cfg, optimizer, steps_per_epoch: int, total_steps: int) -> Schedule:
    """The run's schedule; `optimizer_cfg` supplies the momentum warmup of the momentum family."""
    build = SCHEDULES[cfg.name].build
    if build is PlateauFactor:  # its floor min_lr is absolute, so it needs the (scaled) base lr
        factor = PlateauFactor(cfg, steps_per_epoch, total_steps, base_lr=optimizer.param_groups[0]["lr"])
    else:
        factor = build(cfg, steps_per_epoch, total_steps)
    return Schedule(optimizer, factor, momentum_ramp(optimizer_cfg, steps_per_epoch))
