"""Issue 25's campaign: new invocations and hand-damaged run folders on every command.

Each case runs `trainlab <args>` in-process in a clean copy of a template working folder (a finished
run, a finished two-job sweep), after its damage is applied. A case expected to be refused must exit
non-zero with exactly one line on stderr, no traceback, and leave the whole working folder (the outputs
tree, every file's bytes) as it was; a case expected to work must exit 0 without a traceback.

    python scripts/edge_campaign.py            # every case: tried / handled, and each failure
    python scripts/edge_campaign.py -k resume  # the cases whose name holds "resume"

tests/test_edge_campaign.py runs a fast subset in the default suite and the whole campaign under -m slow.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

os.environ.setdefault("TRAINLAB_FIGURES", "inline")
os.environ.setdefault("OMP_NUM_THREADS", "1")

RUN = "outputs/runs/done"
SWEEP = "outputs/sweeps/S"
TINY = ["trainer.epochs=2", "dataset.subset=100", "trainer.progress=off", "trainer.threads=1"]


@dataclass
class Case:
    name: str
    args: list[str]
    damage: Callable[[Path], None] | None = None
    env: dict = field(default_factory=dict)
    refused: bool = True   # False: the command must work (exit 0, no traceback)
    fast: bool = False     # in the default suite's subset
    process: bool = False  # run as `python -m trainlab` (plugins are imported once per process)


# --- damage helpers: each takes the working folder

def write(rel: str, data: bytes | str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return apply


def remove(rel: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / rel
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return apply


def flip(rel: str, at: float = 0.5) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / rel
        data = bytearray(path.read_bytes())
        data[int(len(data) * at)] ^= 0x40
        path.write_bytes(bytes(data))
    return apply


def cut(rel: str, keep: float) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / rel
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
    return apply


def keep_lines(rel: str, n: int) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / rel
        path.write_text("".join(path.read_text().splitlines(keepends=True)[:n]))
    return apply


def as_folder(rel: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / rel
        if path.exists():
            path.unlink()
        path.mkdir(parents=True)
    return apply


def copy(src: str, dst: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        shutil.copyfile(root / src, root / dst)
    return apply


def both(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        for step in steps:
            step(root)
    return apply


def sweep_job(root: Path) -> str:
    return sorted(p.name for p in (root / SWEEP).iterdir() if p.is_dir() and not p.name.startswith("."))[0]


def in_job(rel: str, make: Callable[[str], Callable[[Path], None]]) -> Callable[[Path], None]:
    """`make` applied to `rel` inside the sweep's first job folder."""
    def apply(root: Path) -> None:
        make(f"{SWEEP}/{sweep_job(root)}/{rel}")(root)
    return apply


BINARY = bytes(range(256)) * 8
LONG = "x" * 300


def plugin(source: str, module: str) -> tuple[Callable[[Path], None], dict]:
    return write(f"{module}.py", source), {"TRAINLAB_PLUGINS": module}


def cases() -> list[Case]:
    out: list[Case] = []

    def add(name, args, damage=None, env=None, refused=True, fast=False):
        process = bool(env and "TRAINLAB_PLUGINS" in env)
        out.append(Case(name, args, damage, env or {}, refused, fast, process))

    # ---- train: folders, paths, checkpoints to start from, plugins, environment
    add("train resume=true into a new folder", ["train", "resume=true", *TINY], fast=True)
    add("train into the finished run, trailing slash", ["train", *TINY, f"hydra.run.dir={RUN}/"])
    add("train into the finished run, dotted path", ["train", *TINY, f"hydra.run.dir=outputs/runs/../runs/done"])
    add("train into a sweep job's folder", ["train", *TINY, "hydra.run.dir={job}"])
    add("train inside a run's .hydra", ["train", *TINY, f"hydra.run.dir={RUN}/.hydra/x"])
    add("train inside a run's checkpoints", ["train", *TINY, f"hydra.run.dir={RUN}/checkpoints/x"])
    add("train below a regular file", ["train", *TINY, "hydra.run.dir=outputs/note.txt/run"], write("outputs/note.txt", "x"))
    add("train into a regular file", ["train", *TINY, "hydra.run.dir=outputs/note.txt"], write("outputs/note.txt", "x"))
    add("train below /dev/null", ["train", *TINY, "hydra.run.dir=/dev/null/run"])
    add("train run dir with a 300-byte name", ["train", *TINY, f"hydra.run.dir=outputs/{LONG}"], fast=True)
    add("train run dir past PATH_MAX", ["train", *TINY, "hydra.run.dir=" + "/".join(["outputs"] + ["d" * 250] * 17)])
    add("train name of 300 bytes (the folder name keeps its start)", ["train", *TINY, f"name={LONG}"], refused=False)
    add("train sweep dir with a 300-byte name", ["train", "-m", "seed=0,1", *TINY, f"hydra.sweep.dir=outputs/{LONG}"])
    add("train sweep dir past PATH_MAX", ["train", "-m", "seed=0,1", *TINY,
                                          "hydra.sweep.dir=" + "/".join(["outputs"] + ["e" * 250] * 17)])
    add("train sweep into the existing sweep", ["train", "-m", "seed=0,1", *TINY, f"hydra.sweep.dir={SWEEP}"])
    add("train sweep inside a run's checkpoints", ["train", "-m", "seed=0,1", *TINY, f"hydra.sweep.dir={RUN}/checkpoints"])
    add("train sweep below a regular file", ["train", "-m", "seed=0,1", *TINY, "hydra.sweep.dir=outputs/f.txt/s"],
        write("outputs/f.txt", "x"))
    add("train sweep dir that is a file", ["train", "-m", "seed=0,1", *TINY, "hydra.sweep.dir=outputs/f.txt"],
        write("outputs/f.txt", "x"))
    add("train run dir whose lock is a folder", ["train", *TINY, "hydra.run.dir=outputs/runs/new"],
        as_folder("outputs/runs/new/.trainlab.lock"))
    add("train transfer from a bit-flipped last.pt", ["train", *TINY, f"transfer.weights={RUN}/checkpoints/last.pt"],
        flip(f"{RUN}/checkpoints/last.pt"), fast=True)
    add("train transfer from an empty best.pt", ["train", *TINY, f"transfer.weights={RUN}/checkpoints/best.pt"],
        write(f"{RUN}/checkpoints/best.pt", b""))
    add("train transfer from half a best.pt", ["train", *TINY, f"transfer.weights={RUN}/checkpoints/best.pt"],
        cut(f"{RUN}/checkpoints/best.pt", 0.5))
    add("train transfer from metrics.csv", ["train", *TINY, f"transfer.weights={RUN}/metrics.csv"])
    add("train transfer from a text file named .pt", ["train", *TINY, "transfer.weights=outputs/w.pt"],
        write("outputs/w.pt", "weights"))
    add("train transfer from a folder named .pt", ["train", *TINY, "transfer.weights=outputs/w.pt"],
        as_folder("outputs/w.pt"))
    add("train transfer from random bytes", ["train", *TINY, "transfer.weights=outputs/w.pt"], write("outputs/w.pt", BINARY))
    add("train transfer from a zip that is not torch's", ["train", *TINY, "transfer.weights=outputs/w.pt"],
        write("outputs/w.pt", b"PK\x05\x06" + b"\x00" * 18))
    for label, source in [("a syntax error", "def broken(:\n"), ("a RuntimeError", "raise RuntimeError('boom')\n"),
                          ("a NameError", "undefined_name\n"), ("a TypeError", "len(5)\n"),
                          ("a relative import", "from . import x\n"),
                          ("a duplicate option", "from trainlab.schemas.optimizer import OPTIMIZERS\n"
                                                 "from dataclasses import dataclass\n"
                                                 "@OPTIMIZERS.option('adam', 'again')\n@dataclass\nclass A:\n    x: int = 1\n"),
                          ("a missing dependency", "import trainlab_no_such_dependency\n"),
                          ("bytes that are not UTF-8", b"\xff\xfe\x00x = 1\n")]:
        module = "plug_" + "".join(c if c.isalnum() else "_" for c in label)
        damage, env = plugin(source if isinstance(source, str) else "", module)
        if isinstance(source, bytes):
            damage = write(f"{module}.py", source)
        add(f"train with a plugin raising {label}", ["train", *TINY], damage, env, fast=label == "a syntax error")
        add(f"list with a plugin raising {label}", ["list"], damage, env, fast=label == "a RuntimeError")
    add("train with TRAINLAB_PLUGINS naming a path", ["train", *TINY], env={"TRAINLAB_PLUGINS": "../x"})
    add("train with TRAINLAB_PLUGINS naming a folder", ["train", *TINY], as_folder("plugdir"), {"TRAINLAB_PLUGINS": "plugdir.sub"})
    add("train with TRAINLAB_PLUGINS holding a space", ["train", *TINY], env={"TRAINLAB_PLUGINS": "my plugin"})
    add("train with TRAINLAB_PLUGINS of an empty name", ["train", "--cfg", "job"], env={"TRAINLAB_PLUGINS": " , ,"},
        refused=False)
    add("train trainer.device=cuda without CUDA", ["train", *TINY, "trainer.device=cuda"])
    add("train hydra/launcher unknown", ["train", *TINY, "hydra/launcher=rocket"])
    add("train two values for one key (the last wins)", ["train", *TINY, "seed=1", "seed=2"], refused=False)

    # ---- resume: hand-damaged run folders
    add("resume, metrics.csv truncated", ["resume", RUN, "trainer.epochs=3"], keep_lines(f"{RUN}/metrics.csv", 2), fast=True)
    add("resume, metrics.csv emptied", ["resume", RUN, "trainer.epochs=3"], write(f"{RUN}/metrics.csv", b""))
    add("resume, metrics.csv header only", ["resume", RUN, "trainer.epochs=3"], keep_lines(f"{RUN}/metrics.csv", 1))
    add("resume, metrics.csv deleted", ["resume", RUN, "trainer.epochs=3"], remove(f"{RUN}/metrics.csv"))
    add("resume, metrics.csv binary", ["resume", RUN, "trainer.epochs=3"], write(f"{RUN}/metrics.csv", BINARY))
    add("resume, metrics.csv last row torn", ["resume", RUN, "trainer.epochs=3"], cut(f"{RUN}/metrics.csv", 0.9))
    add("resume, metrics.csv a folder", ["resume", RUN, "trainer.epochs=3"], as_folder(f"{RUN}/metrics.csv"))
    add("resume, metrics.csv with NUL bytes", ["resume", RUN, "trainer.epochs=3"],
        write(f"{RUN}/metrics.csv", "step,epoch\n0,0\x00\n"))
    add("resume, last.pt bit-flipped", ["resume", RUN, "trainer.epochs=3"], flip(f"{RUN}/checkpoints/last.pt"), fast=True)
    add("resume, last.pt bit-flipped near its end", ["resume", RUN, "trainer.epochs=3"],
        flip(f"{RUN}/checkpoints/last.pt", 0.99))
    add("resume, last.pt empty", ["resume", RUN, "trainer.epochs=3"], write(f"{RUN}/checkpoints/last.pt", b""))
    add("resume, last.pt cut in half", ["resume", RUN, "trainer.epochs=3"], cut(f"{RUN}/checkpoints/last.pt", 0.5))
    add("resume, last.pt text", ["resume", RUN, "trainer.epochs=3"], write(f"{RUN}/checkpoints/last.pt", "hello"))
    add("resume, last.pt a folder", ["resume", RUN, "trainer.epochs=3"], as_folder(f"{RUN}/checkpoints/last.pt"))
    add("resume, last.pt replaced by best.pt", ["resume", RUN, "trainer.epochs=3"],
        copy(f"{RUN}/checkpoints/best.pt", f"{RUN}/checkpoints/last.pt"))
    add("resume, last.pt deleted (run completed)", ["resume", RUN, "trainer.epochs=3"], remove(f"{RUN}/checkpoints/last.pt"))
    add("resume, checkpoints/ deleted", ["resume", RUN, "trainer.epochs=3"], remove(f"{RUN}/checkpoints"))
    add("resume, checkpoints a file", ["resume", RUN, "trainer.epochs=3"],
        both(remove(f"{RUN}/checkpoints"), write(f"{RUN}/checkpoints", "x")))
    add("resume, lock file a folder", ["resume", RUN, "trainer.epochs=3"], as_folder(f"{RUN}/.trainlab.lock"))
    add("resume, both override records deleted", ["resume", RUN],
        both(remove(f"{RUN}/.trainlab.overrides.yaml"), remove(f"{RUN}/.hydra/overrides.yaml")), fast=True)
    add("resume, records malformed YAML", ["resume", RUN],
        both(write(f"{RUN}/.trainlab.overrides.yaml", "[a, b"), write(f"{RUN}/.hydra/overrides.yaml", "- : :")))
    add("resume, records binary", ["resume", RUN],
        both(write(f"{RUN}/.trainlab.overrides.yaml", BINARY), write(f"{RUN}/.hydra/overrides.yaml", BINARY)))
    add("resume, records a mapping", ["resume", RUN],
        both(write(f"{RUN}/.trainlab.overrides.yaml", "a: 1\n"), write(f"{RUN}/.hydra/overrides.yaml", "a: 1\n")))
    add("resume, records of numbers", ["resume", RUN],
        both(write(f"{RUN}/.trainlab.overrides.yaml", "- 1\n- 2\n"), remove(f"{RUN}/.hydra/overrides.yaml")))
    add("resume, record with a bad value", ["resume", RUN], write(f"{RUN}/.trainlab.overrides.yaml", "- optimizer.lr=-1\n"))
    add("resume, record with an unknown key", ["resume", RUN], write(f"{RUN}/.trainlab.overrides.yaml", "- foo=1\n"))
    add("resume, record changing the arch", ["resume", RUN], write(f"{RUN}/.trainlab.overrides.yaml", "- arch=linear\n"))
    add("resume, record changing the seed", ["resume", RUN], write(f"{RUN}/.trainlab.overrides.yaml", "- seed=9\n"))
    add("resume, record with a sweep value", ["resume", RUN], write(f"{RUN}/.trainlab.overrides.yaml", "- seed=0,1\n"))
    add("resume, record not YAML (Hydra's copy read)", ["resume", RUN, "trainer.epochs=3"],
        write(f"{RUN}/.trainlab.overrides.yaml", "- 'a=[\n"), refused=False)
    add("resume, summary.json binary, nothing else", ["resume", RUN],
        both(write(f"{RUN}/summary.json", BINARY), remove(f"{RUN}/checkpoints")))
    add("resume with resume=false (resume still)", ["resume", RUN, "resume=false", "trainer.epochs=3"], refused=False)
    add("resume with another hydra.run.dir", ["resume", RUN, "hydra.run.dir=outputs/runs/other"])
    add("resume with a changed batch size and lr", ["resume", RUN, "trainer.batch_size=3", "optimizer.lr=0.5"])
    add("resume with a changed dataset", ["resume", RUN, "dataset=spirals"])
    add("resume with a sweep value", ["resume", RUN, "trainer.epochs=3,4"])
    add("resume with a bad device", ["resume", RUN, "trainer.device=tpu"])
    add("resume of a run's .hydra", ["resume", f"{RUN}/.hydra"])
    add("resume of a run's metrics.csv", ["resume", f"{RUN}/metrics.csv"])
    add("resume of the sweep folder", ["resume", SWEEP])
    add("resume of outputs/", ["resume", "outputs"])
    add("resume of a 300-byte name", ["resume", f"outputs/{LONG}"], fast=True)
    add("resume of a path past PATH_MAX", ["resume", "/".join(["outputs"] + ["r" * 250] * 17)])
    add("resume of a file", ["resume", "outputs/f.txt"], write("outputs/f.txt", "x"))
    add("resume of a symlink loop", ["resume", "outputs/loop"], lambda r: os.symlink("loop", r / "outputs" / "loop"))
    add("resume of an empty folder", ["resume", "outputs/runs/empty"], as_folder("outputs/runs/empty"))
    add("resume of a folder with only a lock", ["resume", "outputs/runs/lockonly"],
        write("outputs/runs/lockonly/.trainlab.lock", "123\n"))
    add("resume of a sweep job (= and , in its name)", ["resume", "{job}", "trainer.epochs=2"], refused=False, fast=True)
    add("resume of a run whose .hydra is gone", ["resume", RUN, "trainer.epochs=3"], remove(f"{RUN}/.hydra"),
        refused=False)
    add("resume of a run with a damaged summary.json", ["resume", RUN, "trainer.epochs=3"],
        write(f"{RUN}/summary.json", BINARY), refused=False)

    # ---- resume-sweep: hand-damaged sweep folders
    add("resume-sweep, multirun.yaml deleted", ["resume-sweep", SWEEP], remove(f"{SWEEP}/multirun.yaml"), fast=True)
    add("resume-sweep, multirun.yaml emptied", ["resume-sweep", SWEEP], write(f"{SWEEP}/multirun.yaml", ""))
    add("resume-sweep, multirun.yaml binary", ["resume-sweep", SWEEP], write(f"{SWEEP}/multirun.yaml", BINARY))
    add("resume-sweep, multirun.yaml malformed", ["resume-sweep", SWEEP], write(f"{SWEEP}/multirun.yaml", "a: [1\n"))
    add("resume-sweep, multirun.yaml a list", ["resume-sweep", SWEEP], write(f"{SWEEP}/multirun.yaml", "- 1\n"))
    add("resume-sweep, multirun.yaml without hydra", ["resume-sweep", SWEEP], write(f"{SWEEP}/multirun.yaml", "seed: 0\n"))
    add("resume-sweep, multirun.yaml a folder", ["resume-sweep", SWEEP], as_folder(f"{SWEEP}/multirun.yaml"))
    add("resume-sweep with an unknown key", ["resume-sweep", SWEEP, "foo=1"])
    add("resume-sweep with a bad value", ["resume-sweep", SWEEP, "optimizer.lr=-1"])
    add("resume-sweep with -m", ["resume-sweep", SWEEP, "-m"])
    add("resume-sweep of a run folder", ["resume-sweep", RUN])
    add("resume-sweep of a sweep job", ["resume-sweep", "{job}"])
    add("resume-sweep of a file", ["resume-sweep", "outputs/f.txt"], write("outputs/f.txt", "x"))
    add("resume-sweep of a 300-byte name", ["resume-sweep", f"outputs/{LONG}"])
    add("resume-sweep of an empty folder", ["resume-sweep", "outputs/sweeps/empty"], as_folder("outputs/sweeps/empty"))
    add("resume-sweep, sweep lock a folder", ["resume-sweep", SWEEP], as_folder(f"{SWEEP}/.trainlab.lock"))

    # ---- list
    add("list a group twice", ["list", "optimizer", "optimizer"], refused=False)
    add("list a group in capitals", ["list", "OPTIMIZER"], fast=True)
    add("list an empty name", ["list", ""])
    add("list a key", ["list", "optimizer.lr"])
    add("list an option", ["list", "optimizer=adam"])
    add("list a flag", ["list", "--bogus"])
    add("list hydra", ["list", "hydra"])
    add("list experiment", ["list", "experiment"], refused=False)

    # ---- table
    add("table of a run folder", ["table", RUN])
    add("table of an empty folder", ["table", "outputs/sweeps/empty"], as_folder("outputs/sweeps/empty"), fast=True)
    add("table of a file", ["table", "outputs/f.txt"], write("outputs/f.txt", "x"))
    add("table of a 300-byte name", ["table", f"outputs/{LONG}"])
    add("table with an unknown metric", ["table", SWEEP, "--metric", "bogus"])
    add("table with an unknown --by key", ["table", SWEEP, "--by", "nonexistent.key"])
    add("table with an unknown flag", ["table", SWEEP, "--bogus"])
    add("table with a metric column missing", ["table", SWEEP, "--metric", "metrics:nope"])
    add("table with every job's summary binary (warned, counted missing)", ["table", SWEEP], refused=False, damage=
        lambda r: [write(str((p / "summary.json").relative_to(r)), BINARY)(r) for p in (r / SWEEP).iterdir() if p.is_dir()])
    add("table with a job's metrics.csv binary", ["table", SWEEP, "--metric", "auc"],
        in_job("metrics.csv", lambda rel: write(rel, BINARY)))
    add("table --out into /proc", ["table", SWEEP, "--out", "/proc/trainlab/t.md"])

    # ---- plot
    add("plot, metrics.csv binary", ["plot", RUN], write(f"{RUN}/metrics.csv", BINARY), fast=True)
    add("plot, metrics.csv UTF-16", ["plot", RUN], write(f"{RUN}/metrics.csv", "step,epoch\n0,0\n".encode("utf-16")))
    add("plot, metrics.csv with NUL", ["plot", RUN], write(f"{RUN}/metrics.csv", "step,epoch\n0,\x00\n"))
    add("plot, metrics.csv with words", ["plot", RUN], write(f"{RUN}/metrics.csv", "step,epoch,val_acc\n0,0,high\n"))
    add("plot, metrics.csv with a long row", ["plot", RUN], write(f"{RUN}/metrics.csv", "step,epoch\n0,0,1,2\n"))
    add("plot, metrics.csv a folder", ["plot", RUN], as_folder(f"{RUN}/metrics.csv"))
    add("plot, step_losses.csv binary", ["plot", RUN], write(f"{RUN}/step_losses.csv", BINARY))
    add("plot, step_losses.csv with words", ["plot", RUN], write(f"{RUN}/step_losses.csv", "step,loss\n1,low\n"))
    add("plot, summary.json binary", ["plot", RUN], write(f"{RUN}/summary.json", BINARY), refused=False)
    add("plot, diagnostics_layers.json binary", ["plot", RUN], write(f"{RUN}/diagnostics_layers.json", BINARY),
        refused=False)
    add("plot, curves.png a folder", ["plot", RUN], as_folder(f"{RUN}/curves.png"))
    add("plot of a file", ["plot", "outputs/f.txt"], write("outputs/f.txt", "x"))
    add("plot of a 300-byte name", ["plot", f"outputs/{LONG}"])
    add("plot of an empty folder", ["plot", "outputs/runs/empty"], as_folder("outputs/runs/empty"))
    add("plot of a sweep with a job's metrics binary", ["plot", SWEEP], in_job("metrics.csv", lambda rel: write(rel, BINARY)))
    add("plot with a flag", ["plot", RUN, "--bogus"])

    # ---- ensemble
    add("ensemble, best.pt bit-flipped", ["ensemble", RUN], flip(f"{RUN}/checkpoints/best.pt"), fast=True)
    add("ensemble, best.pt empty", ["ensemble", RUN], write(f"{RUN}/checkpoints/best.pt", b""))
    add("ensemble, best.pt deleted", ["ensemble", RUN], remove(f"{RUN}/checkpoints/best.pt"))
    add("ensemble, checkpoints deleted", ["ensemble", RUN], remove(f"{RUN}/checkpoints"))
    add("ensemble, best.pt text", ["ensemble", RUN], write(f"{RUN}/checkpoints/best.pt", "weights"))
    add("ensemble --top 0", ["ensemble", SWEEP, "--top", "0"])
    add("ensemble --top -1", ["ensemble", SWEEP, "--top", "-1"])
    add("ensemble --top abc", ["ensemble", SWEEP, "--top", "abc"])
    add("ensemble --by bogus", ["ensemble", SWEEP, "--top", "1", "--by", "bogus"])
    add("ensemble --snapshots without snapshots (best.pt alone)", ["ensemble", RUN, "--snapshots"], refused=False)
    add("ensemble of an empty folder", ["ensemble", "outputs/runs/empty"], as_folder("outputs/runs/empty"))
    add("ensemble of metrics.csv", ["ensemble", f"{RUN}/metrics.csv"])
    add("ensemble of a 300-byte name", ["ensemble", f"outputs/{LONG}"])
    add("ensemble --out an existing folder", ["ensemble", RUN, "--out", RUN])
    add("ensemble --out below a file", ["ensemble", RUN, "--out", "outputs/f.txt/r.json"], write("outputs/f.txt", "x"))
    add("ensemble, a job's best.pt flipped", ["ensemble", SWEEP], in_job("checkpoints/best.pt", flip))

    # ---- check, inspect, gradcheck, lr-find
    for flag, value in [("--tolerance", "abc"), ("--tolerance", "0"), ("--tolerance", "nan"), ("--tolerance", "inf"),
                        ("--examples", "0"), ("--examples", "-5"), ("--examples", "2.5")]:
        add(f"check {flag} {value}", ["check", flag, value], fast=(flag, value) == ("--tolerance", "nan"))
    add("check --out into a run's checkpoints", ["check", "--out", f"{RUN}/checkpoints/last.pt"])
    add("check --out a 300-byte name", ["check", "--out", f"outputs/{LONG}"])
    add("check with an unknown flag", ["check", "--bogus"])
    add("check with a sweep", ["check", "-m", "seed=0,1"])
    add("check with a bad override", ["check", "trainer.epochs=0"])
    add("check with a broken plugin", ["check"], *plugin("raise ValueError('x')\n", "plug_check"))
    for flag, value in [("--batch", "abc"), ("--batch", "-1"), ("--batch", "1e9")]:
        add(f"inspect {flag} {value}", ["inspect", flag, value])
    add("inspect with a cnn on spirals", ["inspect", "arch=cnn", "dataset=spirals"])
    add("inspect with an unknown flag", ["inspect", "--gaussian=yes"])
    add("inspect with a sweep", ["inspect", "-m", "seed=0,1"], fast=True)
    add("inspect with a broken plugin", ["inspect"], *plugin("1/0\n", "plug_inspect"))
    for flag, value in [("--entries", "0"), ("--entries", "-1"), ("--entries", "1.5")]:
        add(f"gradcheck {flag} {value}", ["gradcheck", flag, value])
    add("gradcheck with an unknown arch", ["gradcheck", "arch=bogus"])
    add("gradcheck with an unknown flag", ["gradcheck", "--bogus"])
    add("gradcheck with a sweep", ["gradcheck", "-m", "seed=0,1"])
    for flag, value in [("--steps", "abc"), ("--steps", "0"), ("--lr-min", "0"), ("--lr-min", "-1"),
                        ("--lr-max", "inf"), ("--lr-min", "nan"), ("--lr-max", "abc")]:
        add(f"lr-find {flag} {value}", ["lr-find", flag, value], fast=(flag, value) == ("--lr-max", "inf"))
    add("lr-find with a bad lr", ["lr-find", "optimizer.lr=-1"])
    add("lr-find --out into /proc", ["lr-find", "--out", "/proc/trainlab/lr.png"])
    add("lr-find --out a 300-byte name", ["lr-find", "--out", f"outputs/{LONG}.png"])
    add("lr-find with a sweep", ["lr-find", "-m", "seed=0,1"])
    add("lr-find with a broken plugin", ["lr-find"], *plugin("import sys; sys.modules['x'].y\n", "plug_lr"))
    return out


# --- running a case

def tree_digest(root: Path) -> dict:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(root))] = "link:" + os.readlink(p)
        elif p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[str(p.relative_to(root))] = "folder"
    return out


def build_template(root: Path) -> Path:
    """A working folder with a finished run and a finished two-job sweep."""
    from trainlab.cli import main

    root.mkdir(parents=True, exist_ok=True)
    with working_dir(root), contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", *TINY, f"hydra.run.dir={RUN}"]) == 0
        assert main(["train", "-m", "seed=0,1", *TINY[1:], "trainer.epochs=1", f"hydra.sweep.dir={SWEEP}"]) == 0
    return root


@contextlib.contextmanager
def working_dir(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@contextlib.contextmanager
def environment(changes: dict):
    old = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class Result:
    case: Case
    code: int | None
    err: str
    problems: list[str]


def run_case(case: Case, template: Path, scratch: Path) -> Result:
    """The case in a clean copy of `template` below `scratch`."""
    from trainlab.cli import main

    root = Path(tempfile.mkdtemp(dir=scratch))
    shutil.copytree(template, root, dirs_exist_ok=True, symlinks=True)
    if case.damage is not None:
        case.damage(root)
    job = sweep_job(root)
    args = [a.replace("{job}", f"{SWEEP}/{job}") for a in case.args]
    before = tree_digest(root)
    err, code, problems = io.StringIO(), None, []
    quiet = {"HYDRA_FULL_ERROR": "", "TRAINLAB_VERBOSE": ""}
    if case.process:
        import subprocess

        env = {k: v for k, v in os.environ.items() if k not in quiet} | case.env
        done = subprocess.run([sys.executable, "-m", "trainlab", *args], cwd=root, env=env, capture_output=True,
                              text=True, timeout=300)
        code = done.returncode
        err.write(done.stderr)
    else:
        with working_dir(root), environment(quiet | case.env), contextlib.redirect_stderr(err), \
                contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(args)
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException:
                traceback.print_exc()
    for module in [m for m in case.env.get("TRAINLAB_PLUGINS", "").split(",") if m.strip()]:
        sys.modules.pop(module.strip(), None)
    text = err.getvalue().strip()
    lines = text.splitlines()
    if "Traceback" in text:
        problems.append("traceback")
    if case.refused:
        if code in (0, None):
            problems.append(f"exit {code}")
        if len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr")
        if tree_digest(root) != before:
            changed = {k for k in set(before) | set(tree_digest(root)) if before.get(k) != tree_digest(root).get(k)}
            problems.append(f"outputs tree changed: {sorted(changed)[:3]}")
    elif code != 0:
        problems.append(f"exit {code}")
    shutil.rmtree(root, ignore_errors=True)
    return Result(case, code, text, problems)


def campaign(selected: list[Case], out=sys.stdout) -> list[Result]:
    scratch = Path(tempfile.mkdtemp(prefix="edge-campaign-"))
    try:
        template = build_template(scratch / "template")
        results = []
        for case in selected:
            results.append(run_case(case, template, scratch))
            r = results[-1]
            if r.problems:
                print(f"NOT HANDLED  {r.case.name}: {', '.join(r.problems)}\n    {r.err[-600:]}", file=out, flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    handled = [r for r in results if not r.problems]
    commands = sorted({r.case.args[0] for r in results})
    print(f"tried {len(results)}, handled {len(handled)} (commands: {', '.join(commands)})", file=out)
    return results


if __name__ == "__main__":
    pattern = sys.argv[sys.argv.index("-k") + 1] if "-k" in sys.argv else ""
    chosen = [c for c in cases() if pattern in c.name]
    results = campaign(chosen)
    sys.exit(0 if all(not r.problems for r in results) else 1)
