"""Rebuild a trained model from a checkpoint alone: config, preprocessing and weights travel with it."""
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import OmegaConf

from trainlab.engine import checkpoint as ckpt
from trainlab.errors import ConfigError


@dataclass
class Trained:
    path: Path
    spec: object
    model: torch.nn.Module
    preprocess: torch.nn.Module


def load_trained(path: Path, input_shape: tuple, num_classes: int, device="cpu") -> Trained:
    from trainlab.config import validate
    from trainlab.data.preprocess import restore_preprocessor
    from trainlab.nn import build_model

    state = ckpt.load(path)
    if not isinstance(state, dict) or not {"model", "config", "preprocess"} <= set(state):
        raise ConfigError("checkpoint", str(path), "a trainlab checkpoint (best.pt, last.pt or a snapshot)")
    spec = validate(OmegaConf.create(state["config"]))
    pre = restore_preprocessor(spec.preprocess, input_shape, state["preprocess"])
    model = build_model(spec, pre.output_shape(), num_classes)
    model.load_state_dict(state["model"])
    return Trained(Path(path), spec, model.to(device).eval(), pre.to(device))


def checkpoint_config(path: Path) -> dict:
    state = ckpt.load(path)
    if not isinstance(state, dict) or "config" not in state:
        raise ConfigError("checkpoint", str(path), "a trainlab checkpoint (best.pt, last.pt or a snapshot)")
    return state["config"]
