"""Learning-rate schedules by name (`schedule=`), as pure functions of the step.

A schedule is a picklable callable `factor(step) -> float` multiplying the base
learning rate; torch's LambdaLR applies it, so its state (the step counter)
checkpoints like any torch scheduler. Units are explicit: every length is in
`unit` (steps or epochs) and converted to steps once, up front.
Warmup composes with any schedule: during the first `warmup` units the
schedule's factor is multiplied by a linear ramp (or a constant low rate);
the schedule itself keeps counting from step 0, so its closed form holds.
"""
from dataclasses import dataclass

from trainlab.errors import check
from trainlab.registry import Registry

SCHEDULES = Registry("schedule")
UNITS = ("steps", "epochs")


@dataclass
class ScheduleSchema:
    name: str = "constant"
    unit: str = "epochs"         # unit of every length below: steps or epochs
    warmup: float = 0            # warmup length (0 = none)
    warmup_mode: str = "linear"  # linear ramp from warmup_start, or constant at warmup_start
    warmup_start: float = 0.1    # fraction of the base lr at the start of warmup

    def __post_init__(self):
        check(self.unit in UNITS, "unit", self.unit, "one of steps, epochs")
        check(self.warmup >= 0, "warmup", self.warmup, "a non-negative length")
        check(self.warmup_mode in ("linear", "constant"), "warmup_mode", self.warmup_mode, "one of linear, constant")
        check(0 <= self.warmup_start <= 1, "warmup_start", self.warmup_start, "a fraction in [0, 1]")


@dataclass
class StepSchema(ScheduleSchema):
    name: str = "step"
    step_size: float = 10   # decay every step_size units
    gamma: float = 0.1      # multiply the lr by gamma at each decay

    def __post_init__(self):
        super().__post_init__()
        check(self.step_size > 0, "step_size", self.step_size, "a positive length")
        check(0 < self.gamma <= 1, "gamma", self.gamma, "a factor in (0, 1]")


class Factor:
    """factor(step) = warmup(step) * shape(step); plain attributes so LambdaLR can checkpoint it."""

    def __init__(self, cfg: ScheduleSchema, steps_per_epoch: int, total_steps: int):
        per_unit = steps_per_epoch if cfg.unit == "epochs" else 1
        self.per_unit = per_unit
        self.total_steps = total_steps
        self.warmup_steps = cfg.warmup * per_unit
        self.warmup_mode, self.warmup_start = cfg.warmup_mode, cfg.warmup_start

    def warmup(self, step: int) -> float:
        if step >= self.warmup_steps:
            return 1.0
        if self.warmup_mode == "constant":
            return self.warmup_start
        return self.warmup_start + (1 - self.warmup_start) * step / self.warmup_steps

    def shape(self, step: int) -> float:
        return 1.0

    def __call__(self, step: int) -> float:
        return self.warmup(step) * self.shape(step)


class StepFactor(Factor):
    def __init__(self, cfg: StepSchema, steps_per_epoch: int, total_steps: int):
        super().__init__(cfg, steps_per_epoch, total_steps)
        self.step_size, self.gamma = cfg.step_size * self.per_unit, cfg.gamma

    def shape(self, step):
        return self.gamma ** int(step // self.step_size)


SCHEDULES.register("constant", ScheduleSchema)(Factor)
SCHEDULES.register("step", StepSchema)(StepFactor)


class Schedule:
    """What the engine drives: `step()` after every optimizer step and
    `on_eval(metrics)` after every evaluation (for metric-driven schedules)."""

    def __init__(self, optimizer, factor: Factor):
        import torch

        self.factor = factor
        self.lambda_lr = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def step(self) -> None:
        self.lambda_lr.step()

    def on_eval(self, metrics: dict) -> None:
        pass

    def state_dict(self) -> dict:
        return {"lambda_lr": self.lambda_lr.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.lambda_lr.load_state_dict(state["lambda_lr"])


def build_schedule(cfg, optimizer_cfg, optimizer, steps_per_epoch: int, total_steps: int) -> Schedule:
    """The run's schedule; `optimizer_cfg` is there for per-optimizer extras (momentum schedules)."""
    return Schedule(optimizer, SCHEDULES[cfg.name].build(cfg, steps_per_epoch, total_steps))
