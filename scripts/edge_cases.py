"""The cases of issue 25's campaign (run by scripts/edge_campaign.py): each a `trainlab` command line,
the damage done to a clean copy of the template working folder first (a finished run at RUN, a finished
two-job sweep at SWEEP), and whether the command must refuse it or work."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

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
    known: str = ""        # a defect found and left to another change: why (the test expects it to fail)


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
    from edge_cases_tools import tool_cases

    out: list[Case] = []

    def add(name, args, damage=None, env=None, refused=True, fast=False, known=""):
        process = bool(env and "TRAINLAB_PLUGINS" in env)
        out.append(Case(name, args, damage, env or {}, refused, fast, process, known))

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

    out += tool_cases(add)
    return out


