"""Rebuild a trained model from a checkpoint alone: config, preprocessing and weights travel with it.

`load_trained` is the one place a model is rebuilt from a checkpoint (trainlab ensemble, and
anything that evaluates saved weights): the architecture comes from the run's own saved config
through build_model, the same call training made, so options that add layers (dropout, norms)
give the same module layout and the weights load by name.
"""
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import OmegaConf

from trainlab.config import RunSpec
from trainlab.engine import checkpoint as ckpt
from trainlab.errors import ConfigError


@dataclass
class Trained:
    path: Path
    spec: RunSpec
    model: torch.nn.Module
    preprocess: torch.nn.Module


def load_trained(path: Path, input_shape: tuple, num_classes: int, device="cpu") -> Trained:
    from trainlab.config import validate
    from trainlab.data.preprocess import restore_preprocessor
    from trainlab.nn import build_model

    state = ckpt.load(path)  # verified, and a trainlab checkpoint (model, config, preprocess)
    spec = validate(OmegaConf.create(state["config"]))
    pre = restore_preprocessor(spec.preprocess, input_shape, state["preprocess"])
    model = build_model(spec, pre.output_shape(), num_classes)
    missing, unexpected = model.load_state_dict(state["model"], strict=False)
    if missing or unexpected:
        raise ConfigError("checkpoint", str(path), "weights of the model its own config builds (missing: "
                          f"{', '.join(missing[:3]) or 'none'}; unexpected: {', '.join(unexpected[:3]) or 'none'})")
    return Trained(Path(path), spec, model.to(device).eval(), pre.to(device))


def checkpoint_config(path: Path) -> dict:
    return ckpt.load(path)["config"]
