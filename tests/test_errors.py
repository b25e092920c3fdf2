"""Bad input: one line naming the key, the value and what is valid; non-zero exit; no traceback; nothing trained."""
import subprocess
import sys

import pytest

from trainlab.cli import main

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


def folder_digest(folder):
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A working directory that already holds a finished run, which no bad invocation may touch."""
    import os

    root = tmp_path_factory.mktemp("workspace")
    old = os.getcwd()
    os.chdir(root)
    try:
        assert main(["train", "trainer.epochs=1", "dataset.subset=100", "trainer.progress=off"]) == 0
    finally:
        os.chdir(old)
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
