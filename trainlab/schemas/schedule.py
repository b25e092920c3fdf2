"""schedule=: one schema per option (the factors that build on them are in trainlab.optim.schedules).

Every length is in `unit` (steps or epochs) and converted to steps once, up front.
Warmup composes with any schedule (the keys of `ScheduleBase`): during the first
`warmup` units the schedule's factor is multiplied by a ramp from `warmup_start` to 1.
"""
from dataclasses import dataclass, field

from trainlab.errors import check
from trainlab.registry import Registry

SCHEDULES = Registry("schedule", builders="trainlab.optim.schedules")
UNITS = ("steps", "epochs")
MONITORS = {"val_loss": "min", "val_acc": "max"}  # metric -> the direction that is better


def _positive_length(value, key: str) -> None:
    check(value > 0, key, value, "a positive length")


def _decay_factor(value, key: str) -> None:
    check(0 < value <= 1, key, value, "a factor in (0, 1]")


@dataclass
class ScheduleBase:
    """The unit of every length and the warmup that multiplies any schedule."""

    name: str = ""
    unit: str = "epochs"         # unit of every length here: steps or epochs
    warmup: float = 0            # warmup length in `unit` (0 = none); multiplies the schedule
    warmup_mode: str = "linear"  # linear ramp from warmup_start to 1, or constant at warmup_start
    warmup_start: float = 0.1    # fraction of the base lr at the start of warmup

    def __post_init__(self):
        check(self.unit in UNITS, "unit", self.unit, "one of steps, epochs")
        check(self.warmup >= 0, "warmup", self.warmup, "a non-negative length")
        check(self.warmup_mode in ("linear", "constant"), "warmup_mode", self.warmup_mode, "one of linear, constant")
        check(0 <= self.warmup_start <= 1, "warmup_start", self.warmup_start, "a fraction in [0, 1]")


@SCHEDULES.option("constant", "A constant learning rate (after optional warmup).")
@dataclass
class ConstantSchema(ScheduleBase):
    name: str = "constant"


@SCHEDULES.option("step", "Step decay: lr * gamma^floor(t / step_size), t in `unit`.")
@dataclass
class StepSchema(ScheduleBase):
    name: str = "step"
    step_size: float = 10   # decay every step_size units
    gamma: float = 0.1      # multiply the lr by this at each decay

    def __post_init__(self):
        super().__post_init__()
        _positive_length(self.step_size, "step_size")
        _decay_factor(self.gamma, "gamma")


@SCHEDULES.option("multistep", "Multi-step decay: lr * gamma^(number of milestones reached), t in `unit`.")
@dataclass
class MultiStepSchema(ScheduleBase):
    name: str = "multistep"
    milestones: list = field(default_factory=lambda: [10, 15])  # decay when t reaches each of these (increasing, in `unit`)
    gamma: float = 0.1                                         # multiply the lr by this at each milestone

    def __post_init__(self):
        super().__post_init__()
        ok = all(isinstance(m, (int, float)) and m > 0 for m in self.milestones)
        check(ok and list(self.milestones) == sorted(self.milestones), "milestones", list(self.milestones),
              "increasing positive lengths")
        _decay_factor(self.gamma, "gamma")


@SCHEDULES.option("exponential", "Exponential decay: lr * exp(-k * t), t in `unit` (continuous, not staircase).")
@dataclass
class ExponentialSchema(ScheduleBase):
    name: str = "exponential"
    k: float = 0.1  # decay rate per unit (lr halves every ln(2)/k units)

    def __post_init__(self):
        super().__post_init__()
        check(self.k >= 0, "k", self.k, "a non-negative rate")


@SCHEDULES.option("inverse_time", "Inverse-time (1/t) decay: lr / (1 + k * t), t in `unit`.")
@dataclass
class InverseTimeSchema(ScheduleBase):
    name: str = "inverse_time"
    k: float = 0.1  # decay rate per unit (lr halves at t = 1/k)

    def __post_init__(self):
        super().__post_init__()
        check(self.k >= 0, "k", self.k, "a non-negative rate")


@SCHEDULES.option("cosine", "Cosine annealing over the whole run: lr * (m + (1 - m) * (1 + cos(pi * step / total_steps)) / 2).")
@dataclass
class CosineSchema(ScheduleBase):
    """Warmup multiplies the start of the curve; the curve still spans the whole run."""

    name: str = "cosine"
    min_factor: float = 0.0  # m: fraction of the base lr reached at the end of training

    def __post_init__(self):
        super().__post_init__()
        check(0 <= self.min_factor <= 1, "min_factor", self.min_factor, "a fraction in [0, 1]")


@SCHEDULES.option("plateau", "Reduce on plateau (ReduceLROnPlateau's rules), driven by the validation metric.")
@dataclass
class PlateauSchema(ScheduleBase):
    """It is checked at each evaluation (trainer.eval_every). Its counters are saved in checkpoints."""

    name: str = "plateau"
    unit: str = "epochs"           # unit of the warmup length: steps or epochs
    monitor: str = "val_loss"      # val_loss (lower is better) or val_acc (higher is better)
    factor: float = 0.1            # multiply the lr by this on a plateau
    patience: int = 5              # evaluations without improvement tolerated; the lr drops on the next one
    threshold: float = 1e-4        # smallest change that counts as an improvement (see threshold_mode)
    threshold_mode: str = "rel"    # rel: a fraction of the best value; abs: in the metric's units
    cooldown: int = 0              # evaluations to wait after a reduction before counting again
    min_lr: float = 0.0            # floor for the lr (absolute, not a fraction)

    def __post_init__(self):
        super().__post_init__()
        check(self.monitor in MONITORS, "monitor", self.monitor, "one of val_loss, val_acc")
        check(0 < self.factor < 1, "factor", self.factor, "a factor in (0, 1)")
        check(self.patience >= 0, "patience", self.patience, "an integer >= 0")
        check(self.threshold >= 0, "threshold", self.threshold, "a non-negative number")
        check(self.threshold_mode in ("rel", "abs"), "threshold_mode", self.threshold_mode, "one of rel, abs")
        check(self.cooldown >= 0, "cooldown", self.cooldown, "an integer >= 0")
        check(self.min_lr >= 0, "min_lr", self.min_lr, "a non-negative learning rate")


@SCHEDULES.option("cyclic", "Triangular cyclical learning rate: linear base_factor -> 1 -> base_factor, repeated.")
@dataclass
class CyclicSchema(ScheduleBase):
    """The configured optimizer lr is the peak."""

    name: str = "cyclic"
    base_factor: float = 0.1  # lowest lr as a fraction of the peak
    cycle_length: float = 4   # length of one full low -> peak -> low cycle in `unit`

    def __post_init__(self):
        super().__post_init__()
        check(0 <= self.base_factor <= 1, "base_factor", self.base_factor, "a fraction in [0, 1]")
        _positive_length(self.cycle_length, "cycle_length")


@SCHEDULES.option("onecycle", "One-cycle policy (torch's OneCycleLR, two phases) over the whole run; the configured "
                   "optimizer lr is the peak.")
@dataclass
class OneCycleSchema(ScheduleBase):
    """Momentum is not cycled (see the optimizer's momentum warmup)."""

    name: str = "onecycle"
    unit: str = "epochs"            # unit of the warmup length: steps or epochs (the cycle always spans the run)
    warmup: float = 0               # extra warmup multiplier in `unit` (0 = none; onecycle already warms up)
    pct_start: float = 0.3          # fraction of the run spent rising to the peak
    div_factor: float = 25.0        # start at peak / div_factor
    final_div_factor: float = 1e4   # end at peak / (div_factor * final_div_factor)
    anneal: str = "cos"             # shape of both phases: cos or linear

    def __post_init__(self):
        super().__post_init__()
        check(0 < self.pct_start < 1, "pct_start", self.pct_start, "a fraction in (0, 1)")
        check(self.div_factor >= 1, "div_factor", self.div_factor, "a number >= 1")
        check(self.final_div_factor >= 1, "final_div_factor", self.final_div_factor, "a number >= 1")
        check(self.anneal in ("cos", "linear"), "anneal", self.anneal, "one of cos, linear")
