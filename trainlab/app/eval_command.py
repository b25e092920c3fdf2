"""`trainlab eval RUN_OR_CHECKPOINT [split=test|val|train] [dataset=NAME] [dataset.KEY=VALUE ...] [device=cpu]`:
score a trained model on a split, of its own dataset or of another with the same input shape and classes.

The checkpoint (a run folder's checkpoints/best.pt, or any checkpoint file) is verified against its
digest and loaded as data (weights_only); the model and preprocessing are rebuilt from the config
it carries (trainlab.engine.restore.load_trained) and scored by the engine's own evaluation
(Loop.evaluate and its EvalCounts: loss, top-1, top-5, per-class accuracy, confusion matrix), so the
numbers are those a run reports. Prints them and writes `eval/<checkpoint>_<dataset>_<split>.json`
(and the confusion figure beside it) into the run folder.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

from trainlab.errors import ConfigError

SPLITS = ("test", "val", "train")
USAGE = __doc__.split("\n\n")[0]


def parse_args(args: list[str]) -> tuple[Path, dict, list[str]]:
    """(checkpoint, {split, device}, dataset overrides) from the command line; bad input is a ConfigError."""
    if not args or args[0].startswith("-") or ("=" in args[0] and not Path(args[0]).exists()):
        raise ConfigError("RUN_OR_CHECKPOINT", args[0] if args else "", "a run folder or a checkpoint file")
    path, options, dataset = Path(args[0]), {"split": "test", "device": "cpu"}, []
    for arg in args[1:]:
        key, sep, value = arg.partition("=")
        if not sep:
            raise ConfigError(arg, "", "KEY=VALUE: split=..., device=..., dataset=NAME or dataset.KEY=VALUE")
        if key in options:
            options[key] = value
        elif key == "dataset" or key.startswith("dataset."):
            dataset.append(arg)
        else:
            raise ConfigError(key, value, "one of split, device, dataset, dataset.KEY")
    if options["split"] not in SPLITS:
        raise ConfigError("split", options["split"], " or ".join(SPLITS))
    return find_checkpoint(path), options, dataset


def find_checkpoint(path: Path) -> Path:
    if path.is_file():
        return path
    for name in ("best.pt", "last.pt"):
        if (path / "checkpoints" / name).is_file():
            return path / "checkpoints" / name
    raise ConfigError("RUN_OR_CHECKPOINT", str(path), "a run folder holding checkpoints/best.pt, or a checkpoint file")


def dataset_config(trained_on: dict, overrides: list[str]) -> dict:
    """The dataset to score on: the checkpoint's own, or `dataset=NAME` (that option's defaults),
    with `dataset.KEY=VALUE` changes on top."""
    from omegaconf import OmegaConf

    node = OmegaConf.create(trained_on)
    named = [o.partition("=")[2] for o in overrides if o.partition("=")[0] == "dataset"]
    if named:
        from trainlab.app.compose import compose_job

        node = compose_job([f"dataset={named[-1]}"]).dataset
    for override in overrides:
        key, _, value = override.partition("=")
        if key != "dataset":
            import yaml

            OmegaConf.update(node, key[len("dataset."):], yaml.safe_load(value) if value else value, merge=False)
    return OmegaConf.to_container(node, resolve=True)


def evaluate_checkpoint(checkpoint: Path, split: str, device_name: str, dataset: list[str]) -> dict:
    import torch
    from omegaconf import OmegaConf

    from trainlab.config import validate
    from trainlab.data.splits import load_splits
    from trainlab.engine import checkpoint as ckpt
    from trainlab.engine.assemble import choose_placement, place_splits, resolve_device
    from trainlab.engine.loop import Loop
    from trainlab.engine.restore import load_trained
    from trainlab.optim.losses import LOSSES

    config = ckpt.load(checkpoint)["config"]  # verified digest, weights_only
    config["dataset"] = dataset_config(config["dataset"], dataset)
    config["trainer"] = {**config["trainer"], "device": device_name, "compile": False,
                         "metrics": ["top5", "per_class", "confusion"]}
    spec = validate(OmegaConf.create(config))
    device = resolve_device(spec.trainer.device)
    splits = load_splits(spec.dataset)
    try:
        trained = load_trained(checkpoint, splits.input_shape, splits.num_classes, device)
    except RuntimeError as err:  # load_state_dict: a layer's shape differs (other input size or classes)
        raise ConfigError("dataset", spec.dataset.name, "a dataset with the input shape and classes the model was "
                          f"trained on ({str(err).splitlines()[-1].strip()})") from None
    placement = choose_placement(spec.trainer, splits)
    # Loop.evaluate needs these parts of a run's components: the model, preprocessing, loss and batches
    parts = SimpleNamespace(model=trained.model, preprocess=trained.preprocess, augment=None,
                            loss_fn=LOSSES[spec.loss.name].build(spec.loss), train_model=trained.model, dist=None,
                            penalties=[], constraints=[], clip=None, optimizer=None, schedule=None, scaler=None,
                            ema=None, splits=place_splits(splits, device, placement), placement=placement,
                            shuffle_gen=None, aug_gen=None)
    loop = Loop(parts, spec.trainer, device)
    with torch.no_grad():
        result = loop.evaluate(getattr(parts.splits, split))
    return {"checkpoint": str(checkpoint), "dataset": spec.dataset.name, "split": split,
            "examples": len(getattr(splits, split).y), "loss": result["loss"], "top1_acc": result["acc"],
            "top5_acc": result.get("top5_acc"), "per_class_acc": result.get("per_class"),
            "confusion": result.get("confusion")}


def run_folder_of(checkpoint: Path) -> Path:
    parent = checkpoint.resolve().parent
    return parent.parent if parent.name == "checkpoints" else parent


def eval_command(args: list[str]) -> int:
    if args and args[0] in ("-h", "--help"):
        print(f"usage: {USAGE.strip()}\n\n" + __doc__.split("\n\n", 1)[1].strip())
        return 0
    checkpoint, options, dataset = parse_args(args)
    from trainlab.devices import check_device

    check_device("device", options["device"])
    result = evaluate_checkpoint(checkpoint, options["split"], options["device"], dataset)
    print(f"{result['dataset']} {result['split']} ({result['examples']} examples), {checkpoint}:")
    print(f"  loss {result['loss']:.4f}   top-1 {result['top1_acc']:.4f}   top-5 {result['top5_acc']:.4f}")
    per_class = "  ".join(f"{k}:{'-' if math.isnan(a) else f'{a:.3f}'}" for k, a in enumerate(result["per_class_acc"]))
    print(f"  per class: {per_class}")
    out = run_folder_of(checkpoint) / "eval"
    out.mkdir(exist_ok=True)
    stem = f"{checkpoint.stem}_{result['dataset']}_{result['split']}"
    clean = {k: (str(v) if isinstance(v, float) and math.isnan(v) else v) for k, v in result.items()}
    clean["per_class_acc"] = [None if math.isnan(a) else a for a in result["per_class_acc"]]
    (out / f"{stem}.json").write_text(json.dumps(clean, indent=2) + "\n")
    from trainlab.engine.eval_metrics import plot_confusion

    plot_confusion(result["confusion"], out / f"{stem}_confusion.png", f"{result['dataset']} {result['split']}")
    print(f"wrote {out / (stem + '.json')} and {stem}_confusion.png")
    return 0
