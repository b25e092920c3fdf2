"""Bad input: one line naming the key, the value and what is valid; non-zero exit; no traceback; nothing trained."""
import os
import subprocess
import sys

import pytest

from conftest import train_in
from trainlab.app.cli import main

# (arguments, text the one-line message must contain)
CATALOGUE = [
    (["train", "optimizer=adamx"], ["optimizer", "adamx", "adam, "]),
    (["train", "activation=relux"], ["activation", "relux", "relu"]),
    (["train", "regularizer=[l2,bogus]"], ["regularizer", "bogus", "dropout"]),
    (["train", "-m", "optimizer=sgd,adamz"], ["optimizer", "adamz"]),
    (["train", "trainer.epoc=3"], ["trainer.epoc", "unknown key", "epochs"]),
    (["train", "foo=1"], ["foo", "unknown key"]),
    (["train", "+foo=1"], ["foo", "unknown top-level key"]),
    (["train", "arch.widht=3"], ["arch.widht", "unknown key", "width"]),
    (["train", "trainer.epochs=abc"], ["trainer.epochs", "abc"]),
    (["train", "optimizer.lr=-1"], ["optimizer.lr", "-1", "positive"]),
    (["train", "optimizer.lr=0"], ["optimizer.lr", "positive"]),
    (["train", "regularizer=dropout", "regularizer.dropout.p=1.5"], ["regularizer.dropout.p", "1.5", "[0, 1)"]),
    (["train", "regularizer=dropout", "regularizer.dropout.p=1"], ["regularizer.dropout.p", "[0, 1)"]),
    (["train", "arch.depth=0"], ["arch.depth", "0", ">= 1"]),
    (["train", "arch.width=[]"], ["arch.width"]),
    (["train", "trainer.batch_size=0"], ["trainer.batch_size", "0"]),
    (["train", "trainer.precision=fp8"], ["trainer.precision", "fp8", "bf16"]),
    (["train", "trainer.device=tpu"], ["trainer.device", "tpu", "cpu"]),
    (["train", "dataset.val_split=1.5"], ["dataset.val_split", "1.5"]),
    (["train", "dataset.cv.folds=3", "dataset.cv.fold=5"], ["dataset.cv.fold", "5"]),
    (["train", "seed=-3"], ["seed", "-3"]),
    (["train", "init=xavier", "init.distribution=cauchy"], ["init.distribution", "cauchy", "normal"]),
    (["train", "norm=batchnorm", "norm.placement=middle"], ["norm.placement", "middle", "before"]),
    (["train", "loss=hinge", "loss.margin=-1"], ["loss.margin", "-1"]),
    (["train", "loss=cross_entropy", "loss.label_smoothing=1.2"], ["loss.label_smoothing", "1.2"]),
    (["train", "preprocess=pca", "preprocess.components=0"], ["preprocess.components", "0"]),
    (["train", "arch=resnet", "arch.depth=10"], ["arch.depth", "10", "6n + 2"]),
    (["train", "arch=cnn", "arch.kernel=4"], ["arch.kernel", "4", "odd"]),
    (["train", "dataset=synthetic", "dataset.shape=[3,4]"], ["dataset.shape"]),
    (["train", "activation=maxout", "activation.pieces=1"], ["activation.pieces", "1"]),
    (["train", "optimizer=adam", "optimizer.momentum=0.9"], ["optimizer.momentum", "unknown key"]),
    (["train", "schedule=step", "schedule.gamma=2"], ["schedule.gamma", "2"]),
    # found when the data/model are built: still one line, before any training step
    (["train", "arch=cnn", "dataset=spirals"], ["arch", "cnn", "needs (C, H, W) images"]),
    (["train", "arch=torchvision", "arch.model=resnet999", "dataset=synthetic"], ["arch.model", "resnet999"]),
    (["train", "norm=instancenorm"], ["norm", "instancenorm", "conv"]),
    (["train", "norm=groupnorm", "norm.groups=7", "arch.width=64"], ["norm.groups", "7"]),
    (["train", "dataset=mnist", "dataset.root=/nonexistent/trainlab"], ["dataset.root", "/nonexistent/trainlab", "download"]),
    (["train", "dataset=image_folder", "dataset.root=/nonexistent/images"], ["dataset.root", "/nonexistent/images"]),
    (["resume", "/nonexistent/run"], ["RUN_DIR", "/nonexistent/run"]),
    (["resume", "{existing}", "arch=linear"], ["resume", "arch ("]),
    (["resume", "{existing}", "dataset=spirals"], ["dataset.name"]),
    (["train", "arch=torchvision", "arch.model=alexnet"], ["arch", "cannot take inputs of shape (1, 8, 8)"]),
    (["train", "hydra.run.dir={existing}"], ["hydra.run.dir", "trainlab resume"]),
    (["train", "trainer.tta=flip", "dataset=spirals"], ["trainer.tta", "flip"]),
    (["train", "transfer.weights=/nonexistent/w.pt"], ["checkpoint", "/nonexistent/w.pt"]),
    (["train", "transfer.freeze=[nomatch]"], ["transfer.freeze", "nomatch"]),
    (["train", "optimizer=lbfgs", "optimizer.weight_decay=0.1"], ["optimizer.weight_decay"]),
    (["ensemble"], ["ensemble", "required"]),
    (["train", "hydra.run.dir=/etc/hostname/run"], ["hydra.run.dir", "/etc/hostname/run", "writable"]),
    (["train", "-m", "seed=0,1", "hydra.sweep.dir=/etc/hostname/sweep"], ["hydra.sweep.dir", "writable"]),
    (["ensemble", "/nonexistent/sweep"], ["PATH", "/nonexistent/sweep"]),
    (["table", "/nonexistent/sweep"], ["/nonexistent/sweep"]),
    (["resume"], ["RUN_DIR"]),
    (["bogus-command"], ["command", "bogus-command", "train"]),
]


# Issue 12: invocations written the way users mistype: typos, wrong types, absurd sizes, paths, unicode,
# sweep syntax, resume misuse and the other commands. Each must exit non-zero with one line and no
# traceback and leave the whole working folder (the outputs tree) as it was: no new folder, not a byte
# changed. Those only the data can refuse (dataset.subset=5, dataset.cv.folds=100000) start a run whose
# folder is removed again.
MISTYPED = [
    # typos in options
    (["train", "optimiser=adam"], ["optimiser", "unknown key; valid keys: activation,"]),
    (["train", "optimizer=Adam"], ["optimizer", "choose one of adadelta, adagrad, adam,"]),
    (["train", "activation=ReLU"], ["activation", "choose one of elu, gelu, leaky_relu,"]),
    (["train", "arch=MLP"], ["arch", "choose one of cnn, linear, mlp, resnet,"]),
    (["train", "dataset=mnist_fashion"], ["dataset", "choose one of cifar10, cifar100,"]),
    (["train", "dataset=cifar-10"], ["dataset", "choose one of cifar10, cifar100,"]),
    (["train", "norm=batch_norm"], ["norm", "choose one of batchnorm, groupnorm,"]),
    (["train", "init=he"], ["init", "choose one of constant, default,"]),
    (["train", "schedule=cosine_annealing"], ["schedule", "choose one of constant, cosine, cyclic,"]),
    (["train", "loss=mae"], ["loss", "choose one of cross_entropy, hinge, mse"]),
    (["train", "augment=flips"], ["augment", "choose one of color, crop, cutmix,"]),
    (["train", "regularizer=l3"], ["regularizer", "choose one of dropout, elastic_net, l1,"]),
    (["train", "regularizer=[l2,,dropout]"], ["override='regularizer=[l2,,dropout]'", "no viable alternative at input '[l2,,'"]),
    (["train", "preprocess=normalize"], ["preprocess", "choose one of center, minmax, none,"]),
    (["train", "trainer=fast"], ["trainer", "choose one of debug, default"]),
    (["train", "experiment=activation"], ["experiment", "choose one of activations,"]),
    (["train", "-m", "optimizer=sgd,adamw,adamx"], ["optimizer", "choose one of adadelta, adagrad, adam,"]),
    (["train", "-m", "activation=relu,tahn"], ["activation", "choose one of elu, gelu, leaky_relu,"]),
    # typos in keys
    (["train", "trainer.epoch=3"], ["trainer.epoch", "unknown key; valid keys in trainer:"]),
    (["train", "trainer.batchsize=32"], ["trainer.batchsize", "unknown key; valid keys in trainer:"]),
    (["train", "trainer.batch-size=32"], ["trainer.batch-size", "unknown key; valid keys in trainer:"]),
    (["train", "optimizer.learning_rate=0.1"], ["optimizer.learning_rate", "unknown key; valid keys in optimizer:"]),
    (["train", "optimizer.LR=0.1"], ["optimizer.LR", "unknown key; valid keys in optimizer:"]),
    (["train", "arch.layers=3"], ["arch.layers", "unknown key; valid keys in arch: depth,"]),
    (["train", "dataset.valsplit=0.1"], ["dataset.valsplit", "unknown key; valid keys in dataset: cv,"]),
    (["train", "dataset.cv.fold=1"], ["dataset.cv.fold", "0 without dataset.cv.folds (set"]),
    (["train", "trainer.ema=0.99"], ["trainer.ema", "a group of keys, each set on its own,"]),
    (["train", "trainer.early_stop=5"], ["trainer.early_stop", "a group of keys, each set on its own,"]),
    (["train", "seeds=1"], ["seeds", "unknown key; valid keys: activation,"]),
    (["train", "Seed=1"], ["Seed", "unknown key; valid keys: activation,"]),
    (["train", "regularizer.dropout.p=0.5"], ["regularizer.dropout.p", "unknown key"]),
    (["train", "optimizer=adam", "optimizer.nesterov=true"], ["optimizer.nesterov", "unknown key; valid keys in optimizer:"]),
    (["train", "transfer.weight=x.pt"], ["transfer.weight", "unknown key; valid keys in transfer:"]),
    (["train", "trainer.device=gpu"], ["trainer.device", "one of auto, cpu, cuda, cuda:N, mps"]),
    (["train", "trainer.device=cuda:x"], ["trainer.device", "one of auto, cpu, cuda, cuda:N, mps"]),
    (["train", "trainer.device=CUDA"], ["trainer.device", "one of auto, cpu, cuda, cuda:N, mps"]),
    # wrong types
    (["train", "trainer.epochs=3.5"], ["trainer.epochs", "Value '3.5' of type 'float' could not"]),
    (["train", "trainer.epochs=ten"], ["trainer.epochs", "Value 'ten' of type 'str' could not be"]),
    (["train", "trainer.batch_size=1e3"], ["trainer.batch_size", "Value '1000.0' of type 'float' could"]),
    (["train", "trainer.batch_size=[32]"], ["trainer.batch_size", "Value '[32]' of type 'ListConfig' could"]),
    (["train", "optimizer.lr=fast"], ["optimizer.lr", "Value 'fast' of type 'str' could not be"]),
    (["train", "optimizer.lr=[0.1,0.2]"], ["optimizer.lr", "Value '[0.1, 0.2]' of type 'ListConfig'"]),
    (["train", "optimizer.lr=1e-3x"], ["optimizer.lr", "Value '1e-3x' of type 'str' could not"]),
    (["train", "arch.depth=two"], ["arch.depth", "Value 'two' of type 'str' could not be"]),
    (["train", "arch.width=abc"], ["arch.width", "a positive integer or a non-empty list"]),
    (["train", "seed=1.5"], ["seed", "an integer in [0, 2^32) (numpy's seed"]),
    (["train", "seed=abc"], ["seed", "an integer in [0, 2^32) (numpy's seed"]),
    (["train", "seed=true"], ["seed", "an integer in [0, 2^32) (numpy's seed"]),
    (["train", "dataset.val_split=ten%"], ["dataset.val_split", "Value 'ten%' of type 'str' could not be"]),
    (["train", "trainer.deterministic=maybe"], ["trainer.deterministic", "Value 'maybe' is not a valid bool (type"]),
    (["train", "trainer.compile=2"], ["trainer.compile", "true or false"]),
    (["train", "regularizer=dropout", "regularizer.dropout.p=high"], ["regularizer.dropout.p", "Value 'high' of type 'str' could not be"]),
    (["train", "trainer.precision=16"], ["trainer.precision", "one of fp32, bf16, fp16"]),
    (["train", "trainer.monitor=accuracy"], ["trainer.monitor", "one of val_acc, val_loss"]),
    (["train", "trainer.tta=flips"], ["trainer.tta", "one of none, flip, crop"]),
    (["train", "trainer.progress=verbose"], ["trainer.progress", "one of auto, rich, plain, off"]),
    (["train", "trainer.progress=rich", "trainer.diagnostics=fulll"], ["trainer.diagnostics", "one of off, light, full"]),
    (["train", "trainer.nonfinite=ignore"], ["trainer.nonfinite", "one of stop, skip"]),
    (["train", "trainer.data_placement=gpu"], ["trainer.data_placement", "one of auto, device, host, loader"]),
    # absurd values
    (["train", "optimizer.lr=inf"], ["optimizer.lr", "a finite number"]),
    (["train", "optimizer.lr=nan"], ["optimizer.lr", "a positive learning rate"]),
    (["train", "optimizer.lr=-inf"], ["optimizer.lr", "a positive learning rate"]),
    (["train", "optimizer.lr=1e400"], ["optimizer.lr", "a finite number"]),
    (["train", "seed=99999999999999999999"], ["seed", "an integer in [0, 2^32) (numpy's seed"]),
    (["train", "seed=4294967296"], ["seed", "an integer in [0, 2^32) (numpy's seed"]),
    (["train", "trainer.epochs=0"], ["trainer.epochs", "an integer >= 1"]),
    (["train", "trainer.epochs=-1"], ["trainer.epochs", "an integer >= 1"]),
    (["train", "trainer.batch_size=-32"], ["trainer.batch_size", "an integer >= 1"]),
    (["train", "trainer.eval_every=0"], ["trainer.eval_every", "an integer >= 1"]),
    (["train", "trainer.checkpoint_every=0"], ["trainer.checkpoint_every", "an integer >= 1"]),
    (["train", "trainer.checkpoint_every_minutes=0"], ["trainer.checkpoint_every_minutes", "a positive number of minutes, or null"]),
    (["train", "trainer.checkpoint_every_minutes=-5"], ["trainer.checkpoint_every_minutes", "a positive number of minutes, or null"]),
    (["train", "dataset.val_split=-0.1"], ["dataset.val_split", "a fraction in (0, 1)"]),
    (["train", "dataset.val_split=1"], ["dataset.val_split", "a fraction in (0, 1)"]),
    (["train", "dataset.subset=0"], ["dataset.subset", "a positive count or null"]),
    (["train", "dataset.subset=-5"], ["dataset.subset", "a positive count or null"]),
    (["train", "dataset.subset=5"], ["dataset.subset", "at least 10 (one example per class)"]),
    (["train", "dataset=spirals", "dataset.subset=2"], ["dataset.subset", "at least 3 (one example per class)"]),
    (["train", "dataset.cv.folds=1"], ["dataset.cv.folds", "0 (off) or an integer >= 2"]),
    (["train", "dataset.cv.folds=100000"], ["dataset.cv.folds", "at most the size of the smallest class"]),
    (["train", "dataset.cv.folds=5", "dataset.cv.fold=-1"], ["dataset.cv.fold", "an integer in [0, 4]"]),
    (["train", "arch.depth=-2"], ["arch.depth", "an integer >= 1"]),
    (["train", "arch.width=0"], ["arch.width", "a positive integer or a non-empty list"]),
    (["train", "optimizer=adam", "optimizer.betas=[0.9]"], ["optimizer.betas", "two fractions in [0, 1)"]),
    (["train", "optimizer=adam", "optimizer.betas=[1.5,0.999]"], ["optimizer.betas", "two fractions in [0, 1)"]),
    (["train", "optimizer.weight_decay=-0.1"], ["optimizer.weight_decay", "a non-negative number"]),
    (["train", "loss=cross_entropy", "loss.label_smoothing=-0.1"], ["loss.label_smoothing", "a fraction in [0, 1)"]),
    (["train", "trainer.ema.decay=1"], ["trainer.ema.decay", "a decay in [0, 1) (0 = off)"]),
    (["train", "trainer.ema.decay=-0.5"], ["trainer.ema.decay", "a decay in [0, 1) (0 = off)"]),
    (["train", "trainer.early_stop.patience=-1"], ["trainer.early_stop.patience", "an integer >= 0"]),
    (["train", "trainer.loader.workers=-1"], ["trainer.loader.workers", "an integer >= 0 (0 = no worker"]),
    (["train", "trainer.diagnostics_every=0"], ["trainer.diagnostics_every", "an integer >= 1"]),
    (["train", "trainer.device_data_limit_mb=-1"], ["trainer.device_data_limit_mb", "a size in MB >= 0"]),
    (["train", "dataset=synthetic", "dataset.shape=[0,8,8]"], ["dataset.shape", "[C, H, W] or [D] of positive integers"]),
    (["train", "dataset=synthetic", "dataset.classes=1"], ["dataset.classes", "an integer >= 2"]),
    (["train", "dataset=spirals", "dataset.classes=0"], ["dataset.classes", "an integer >= 2"]),
    (["train", "schedule=step", "schedule.step_size=0"], ["schedule.step_size", "a positive length"]),
    (["train", "augment=crop", "augment.crop.padding=-1"], ["augment.crop.padding", "a pixel count >= 0"]),
    (["train", "trainer.stop_after=0"], ["trainer.stop_after", "a positive epoch count or null"]),
    # paths
    (["train", "transfer.weights=outputs"], ["transfer.weights", "an existing checkpoint or state-dict"]),
    (["train", "transfer.weights=/nonexistent/x.pt"], ["transfer.weights", "an existing checkpoint or state-dict"]),
    (["train", "transfer.weights="], ["transfer.weights", "an existing checkpoint or state-dict"]),
    (["train", "transfer.weights=~/nope-trainlab.pt"], ["override='transfer.weights=~/nope-trainlab.pt'", "key=value with a dotted key (e.g."]),
    (["train", "transfer.weights={existing}/checkpoints"], ["transfer.weights", "an existing checkpoint or state-dict"]),
    (["train", "dataset=mnist", "dataset.root=/dev/null"], ["dataset.root", "no mnist data there; set"]),
    (["train", "dataset=image_folder", "dataset.root=/etc/hostname"], ["dataset.root", "an existing folder of images (one"]),
    (["train", "hydra.run.dir="], ["hydra.run.dir", "a folder of the run's own below the"]),
    (["train", "hydra.run.dir=."], ["hydra.run.dir", "a folder of the run's own below the"]),
    (["train", "hydra.run.dir=.."], ["hydra.run.dir", "a folder of the run's own below the"]),
    (["train", "hydra.run.dir={existing}/checkpoints"], ["hydra.run.dir", "a folder outside another run's folder"]),
    (["train", "hydra.run.dir=/proc/trainlab"], ["hydra.run.dir", "a writable folder (/proc is not a"]),
    (["train", "-m", "seed=0,1", "hydra.sweep.dir=/proc/trainlab"], ["hydra.sweep.dir", "a writable folder (/proc is not a"]),
    (["train", "-m", "seed=0,1", "hydra.sweep.dir={existing}"], ["hydra.sweep.dir", "a sweep's own folder (this one holds a"]),
    (["train", "-m", "seed=0,1", "hydra.sweep.dir=."], ["hydra.sweep.dir", "a folder of the run's own below the"]),
    (["train", "trainer.device=cuda:99"], ["trainer.device", "a device this machine has (no CUDA"]),
    (["train", "trainer.device=mps"], ["trainer.device", "a device this machine has: no Apple MPS"]),
    (["train", "-m", "trainer.device=cpu,cuda:99"], ["trainer.device", "a device this machine has (no CUDA"]),
    # unicode
    (["train", "name=日本語"], ["override='name=日本語'", "Hydra reads an unquoted value in ASCII"]),
    (["train", "optimizer=адам"], ["override='optimizer=адам'", "Hydra reads an unquoted value in ASCII"]),
    (["train", "activation=rélu"], ["override='activation=rélu'", "Hydra reads an unquoted value in ASCII"]),
    (["train", "trainer.epochs=３"], ["override='trainer.epochs=３'", "it holds FULLWIDTH DIGIT THREE"]),
    (["train", "optimizer.lr=0,1"], ["override='optimizer.lr=0,1'", "Ambiguous value for argument"]),
    (["train", "trainer.epochs=—3"], ["override='trainer.epochs=—3'", "Hydra reads an unquoted value in ASCII"]),
    (["train", "optimizer.lr=０.１"], ["override='optimizer.lr=０.１'", "it holds FULLWIDTH DIGIT ZERO (U+FF10),"]),
    (["train", "trainer.device=cpu​"], ["override='trainer.device=cpu\\u200b'", "it holds an invisible character, ZERO"]),
    # sweep syntax
    (["train", "-m", "seed=range(0)"], ["sweep", "at least one job (an empty range?)"]),
    (["train", "-m", "seed=range(5,1)"], ["sweep", "at least one job (an empty range?)"]),
    (["train", "-m", "seed=0,,1"], ["override='seed=0,,1'", "Error parsing override 'seed=0,,1'"]),
    (["train", "-m", "seed=range(0,3"], ["override='seed=range(0,3'", "no viable alternative at input"]),
    (["train", "-m", "seed=0,1", "--cfg", "job"], ["--cfg", "one of them: --cfg prints one job's"]),
    (["train", "seed=0,1"], ["override='seed=0,1'", "Ambiguous value for argument 'seed=0,1'"]),
    (["train", "-m", "seed=0,1", "trainer.epochs=abc"], ["trainer.epochs", "Value 'abc' of type 'str' could not be"]),
    (["train", "-m", "optimizer=sgd,adam", "optimizer.betas=[0.9,0.99]"], ["optimizer.betas", "unknown key; valid keys in optimizer:"]),
    (["train", "-m", "seed="], ["seed", "an integer in [0, 2^32) (numpy's seed"]),
    (["train", "--multirun", "seed=a,b"], ["seed", "an integer in [0, 2^32) (numpy's seed"]),
    (["train", "-m", "optimizer.lr=choice()"], ["override='optimizer.lr=choice()'", "Error parsing override"]),
    (["train", "-m", "seed=0,1", "optimizer.lr=inf"], ["optimizer.lr", "a finite number"]),
    (["train", "-m", "dataset.cv.folds=3", "dataset.cv.fold=0,1,2,3"], ["dataset.cv.fold", "an integer in [0, 2]"]),
    # resume misuse
    (["resume", "{existing}", "{existing}"], ["overrides", "key=value overrides after the one"]),
    (["resume", "outputs"], ["RUN_DIR", "a trainlab run folder (one holding"]),
    (["resume", "outputs/runs"], ["RUN_DIR", "a trainlab run folder (one holding"]),
    (["resume", "{existing}/checkpoints"], ["RUN_DIR", "a trainlab run folder (one holding"]),
    (["resume", "{existing}/checkpoints/last.pt"], ["RUN_DIR", "a trainlab run folder (one holding"]),
    (["resume", "{existing}", "trainer.batch_size=7"], ["resume", "the run's own configuration; these keys"]),
    (["resume", "{existing}", "seed=5"], ["resume", "the run's own configuration; these keys"]),
    (["resume", "{existing}", "optimizer=sgd"], ["resume", "the run's own configuration; these keys"]),
    (["resume", "{existing}", "{existing}/checkpoints/last.pt"], ["overrides", "key=value overrides after the one"]),
    (["resume", "{existing}", "-m"], ["resume", "key=value overrides: resume continues"]),
    (["resume", "/etc/hostname"], ["RUN_DIR", "a trainlab run folder (one holding"]),
    (["resume-sweep", "{existing}"], ["SWEEP_DIR", "a sweep folder holding multirun.yaml"]),
    (["resume-sweep", "/nonexistent/sweep"], ["SWEEP_DIR", "a sweep folder holding multirun.yaml"]),
    (["resume-sweep"], ["SWEEP_DIR", "a sweep folder to resume, e.g."]),
    (["resume", "--bogus"], ["RUN_DIR", "a run folder to resume, e.g."]),
    (["resume", "{existing}", "trainer.epochs=abc"], ["trainer.epochs", "Value 'abc' of type 'str' could not be"]),
    (["resume", "{existing}", "foo=1"], ["foo", "unknown key; valid keys: activation,"]),
    (["resume", "{existing}", "trainer.device=cuda:99"], ["trainer.device", "a device this machine has (no CUDA"]),
    (["resume", "{existing}", "optimizer.lr=inf"], ["optimizer.lr", "a finite number"]),
    # other commands
    (["ensemble", "{existing}", "--device", "cuda:99"], ["--device", "a device this machine has (no CUDA"]),
    (["ensemble", "{existing}", "--device", "tpu"], ["--device", "one of auto, cpu, cuda, cuda:N, mps"]),
    (["ensemble", "{existing}", "--out", "/proc/trainlab/x.json"], ["--out", "a writable folder (/proc is not a"]),
    (["ensemble", "{existing}", "--out", "outputs"], ["--out", "a file to write the JSON result to (it"]),
    (["ensemble", "{existing}", "--snapshots", "--device", "mps"], ["--device", "a device this machine has: no Apple MPS"]),
    (["ensemble", "{existing}", "--out"], ["ensemble", "argument --out: expected one argument"]),
    (["ensemble", "/etc/hostname"], ["/etc/hostname: not a trainlab checkpoint (not a file"]),
    (["table"], ["trainlab table: the following arguments are required:"]),
    (["check", "--tolerance=-1"], ["--tolerance", "a positive number"]),
    (["check", "--examples=abc"], ["--examples", "invalid int value: 'abc'"]),
    (["check", "optimizer=adamx"], ["optimizer", "choose one of adadelta, adagrad, adam,"]),
    (["inspect", "--batch", "0"], ["--batch", "a positive integer"]),
    (["lr-find", "--steps", "1"], ["--steps", "at least 2 steps"]),
    (["lr-find", "--lr-min", "1", "--lr-max", "0.1"], ["--lr-min", "below --lr-max (0.1)"]),
    (["gradcheck", "--entries=x"], ["--entries", "invalid int value: 'x'"]),
    (["check", "--out", "/etc/hostname"], ["--out", "a writable folder (/etc/hostname is not"]),
    (["list", "optimiser"], ["GROUP", "a config group: activation, arch,"]),
    (["lr-find", "trainer.device=cuda:99"], ["trainer.device", "a device this machine has (no CUDA"]),
    (["check", "--out", "/proc/trainlab"], ["--out", "a writable folder (/proc is not a"]),
    (["train", "--cfg", "jobs"], ["flags='--cfg jobs'", "--cfg/-c: invalid choice: 'jobs'"]),
    (["train", "optimizer==adam"], ["override='optimizer==adam'", "Error parsing override 'optimizer==adam'"]),
    (["train", "=adam"], ["override='=adam'", "key=value (the key before '=' is"]),
    (["train", "optimizer.=0.1"], ["override='optimizer.=0.1'", "key=value with a dotted key (e.g."]),
    (["train", "optimizer.lr=0.1 trainer.epochs=2"], ["override='optimizer.lr=0.1 trainer.epochs=2'", "mismatched input '=' expecting <EOF>"]),
    (["train", "optimizer:adam"], ["override='optimizer:adam'", "key=value or group=option (there is no"]),
    (["train", "--epochs", "3"], ["flags='--epochs'", "unrecognized arguments: --epochs"]),
    (["train", "-e", "3"], ["flags='-e'", "unrecognized arguments: -e (trainlab"]),
]

def folder_digest(folder):
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A working directory that already holds a finished run, which no bad invocation may touch."""
    root = tmp_path_factory.mktemp("workspace")
    train_in(root, ["trainer.epochs=1", "dataset.subset=100", "trainer.progress=off"])
    existing = next((root / "outputs" / "runs").iterdir())
    return root, existing, folder_digest(existing)


@pytest.mark.parametrize("args,expected", CATALOGUE, ids=lambda v: " ".join(v) if isinstance(v, list) and v and v[0] in
                         ("train", "resume", "bogus-command") else None)
def test_bad_input_is_one_clear_line(workspace, monkeypatch, capsys, args, expected):
    root, existing, digest = workspace
    monkeypatch.chdir(root)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    checkpoints_before = set(root.rglob("*.pt"))
    args = [a.replace("{existing}", str(existing)) for a in args]
    code = main([*args, "trainer.progress=off"] if args[0] == "train" else args)
    err = capsys.readouterr().err.strip()
    assert code != 0
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(("error", "trainlab table:"))
    for text in expected:
        assert text.replace("{existing}", str(existing)) in lines[0], (text, lines[0])
    assert "Traceback" not in err
    assert set(root.rglob("*.pt")) == checkpoints_before  # nothing trained
    assert folder_digest(existing) == digest  # the existing run is untouched


def tree_digest(root):
    """Every path below `root`, folders included, with each file's content hash."""
    import hashlib

    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("args,expected", MISTYPED, ids=lambda v: " ".join(v)[:60] if isinstance(v, list) and v and
                         v[0] in ("train", "resume", "resume-sweep", "ensemble", "table", "check", "inspect",
                                  "lr-find", "gradcheck", "list") else None)
def test_mistyped_invocation_is_one_line_and_leaves_the_outputs_tree_as_it_was(workspace, monkeypatch, capsys,
                                                                               args, expected):
    root, existing, _ = workspace
    monkeypatch.chdir(root)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.delenv("TRAINLAB_VERBOSE", raising=False)
    before = tree_digest(root)
    code = main([a.replace("{existing}", str(existing)) for a in args])
    err = capsys.readouterr().err.strip()
    assert code != 0
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for text in expected:
        assert text.replace("{existing}", str(existing)) in lines[0], (text, lines[0])
    assert tree_digest(root) == before


def test_empty_image_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "images" / "cat").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    code = main(["train", "dataset=image_folder", f"dataset.root={tmp_path / 'images'}", "trainer.progress=off"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "dataset.root" in err


def test_subprocess_has_no_traceback_and_verbose_has_one(tmp_path, cli_env):
    cmd = [sys.executable, "-m", "trainlab", "train", "optimizer.lr=-1"]
    quiet = subprocess.run(cmd, cwd=tmp_path, env=cli_env, capture_output=True, text=True)
    assert quiet.returncode == 2
    assert quiet.stderr.strip() == "error: optimizer.lr=-1.0 is not valid: a positive learning rate"
    loud = subprocess.run(cmd, cwd=tmp_path, env=cli_env | {"HYDRA_FULL_ERROR": "1"}, capture_output=True, text=True)
    assert loud.returncode != 0 and "Traceback" in loud.stderr


@pytest.mark.parametrize("placement", ["preload", "loader in process", "loader worker"])
def test_a_broken_image_is_named_in_one_line_and_no_folder_is_left(tmp_path, monkeypatch, capsys, placement):
    from fakedata import write_image_folder

    images = write_image_folder(tmp_path / "images", per_class=6)
    for bad in (images / "dog").iterdir():  # every dog: one is in the training split, read in epoch 1
        bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    monkeypatch.chdir(tmp_path)
    extra = {"preload": [], "loader in process": ["dataset.preload=false", "trainer.loader.workers=0"],
             "loader worker": ["dataset.preload=false", "trainer.loader.workers=1"]}[placement]
    code = main(["train", "dataset=image_folder", f"dataset.root={images}", "dataset.image_size=8", "arch=cnn",
                 "arch.channels=[4]", "trainer.epochs=1", "trainer.batch_size=4", "trainer.progress=off", *extra])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"error: {images / 'dog'}/") and ".png: not a readable image" in lines[0]
    assert lines[0].endswith("remove or replace it")
    assert not (tmp_path / "outputs").exists()


def test_sizes_larger_than_the_data_are_warned_and_train(tmp_path, caplog):
    from conftest import run_tiny

    with caplog.at_level("WARNING", logger="trainlab"):
        summary = run_tiny(tmp_path, ["dataset.subset=100000", "trainer.batch_size=5000"])
    assert summary["status"] == "completed" and summary["steps"] == 1  # one full-batch step per epoch
    assert "dataset.subset=100000 is larger than the training split" in caplog.text
    assert "trainer.batch_size=5000 is larger than the training split" in caplog.text


def test_a_dataset_that_cannot_be_fetched_leaves_no_folder(tmp_path, monkeypatch, capsys):
    """dataset=cifar10 dataset.download=true into an empty root, offline: one line, no run folder (the
    precheck decides it: the download host is unreachable, as the test makes it, without the network)."""
    monkeypatch.setattr("trainlab.app.prechecks.datasets.host_reachable", lambda host: False)
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    code = main(["train", "dataset=cifar10", "dataset.download=true", f"dataset.root={tmp_path / 'empty'}",
                 "arch=cnn", "trainer.progress=off"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"error: dataset.root='{tmp_path / 'empty'}' is not valid: no cifar10 data there and "
                               "its download host www.cs.toronto.edu cannot be reached from here; copy torchvision's "
                               f"archives (cifar-10-python.tar.gz) into {tmp_path / 'empty'} "), lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"] and not any((tmp_path / "empty").iterdir())


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc as a folder nothing can be created in")
@pytest.mark.parametrize("args", [["check"], ["lr-find", "--steps", "5"], ["inspect"], ["train"],
                                  ["train", "-m", "seed=0,1"], ["ensemble", "{existing}", "--out", "e.json"]])
def test_commands_in_a_read_only_working_folder_are_one_line(workspace, monkeypatch, capsys, args):
    """A working folder nothing can be written in (/proc stands in for a read-only mount: root ignores
    permission bits): one line before any work, instead of a traceback after it."""
    root, existing, _ = workspace
    monkeypatch.chdir("/proc")
    code = main([a.replace("{existing}", str(existing)) for a in args])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "/proc is not a writable directory" in lines[0], lines
