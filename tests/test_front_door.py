"""The way in: version, help on every command, `trainlab list`, tab completion, one validation for
the sweep precheck and the job, the run's choices block, and no torch before a run starts."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trainlab.app.cli import COMMANDS

TRAINLAB = [sys.executable, "-m", "trainlab"]
REPO = Path(__file__).resolve().parents[1]
FAST = ["trainer.epochs=1", "dataset.subset=100", "trainer.progress=plain"]


def trainlab(args, cwd, env, timeout=240):
    return subprocess.run([*TRAINLAB, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def in_process(code: str, cwd: Path, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_version_and_help_on_every_command_without_torch(tmp_path, cli_env):
    """--version, the top-level help and each command's --help answer without importing torch."""
    res = in_process(f"""
        import contextlib, io, sys
        from trainlab.app.cli import main
        for args in [["--version"], ["--help"]] + [[c, "--help"] for c in {list(COMMANDS)!r}]:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = main(args)
            assert code == 0, (args, code)
            assert "usage" in out.getvalue().lower() or "trainlab " in out.getvalue(), (args, out.getvalue()[:200])
            assert "torch" not in sys.modules, args
        print("ok")
    """, tmp_path, cli_env)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-2000:]
    version = trainlab(["--version"], tmp_path, cli_env)
    assert version.returncode == 0 and version.stdout.startswith("trainlab 0.")
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("args", [["train", "optimizer.lr=-1"], ["train", "optimizer=adamm"],
                                  ["train", "init=xavier", "+init.std=0.5"], ["train", "-m", "norm=none,instancenorm"],
                                  ["resume", str(Path("no") / "such" / "run")], ["lr-find", "--steps", "-3"],
                                  ["check", "--nonsense"], ["inspect", "optimizer.lr=-1"], ["ensemble"],
                                  ["ensemble", str(Path("no") / "such" / "run")]])
def test_bad_input_is_one_line_before_torch_is_imported(tmp_path, cli_env, args):
    res = in_process(f"""
        import sys
        from trainlab.app.cli import main
        code = main({args!r})
        print("torch imported" if "torch" in sys.modules else "no torch", code)
    """, tmp_path, cli_env)
    assert res.stdout.strip().splitlines()[-1] == "no torch 2", (res.stdout, res.stderr)
    assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("error: "), res.stderr
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("prefix", ["", "+", "++"])
def test_a_key_another_option_has_is_refused_however_it_is_written(tmp_path, cli_env, prefix):
    """init=xavier has no `std` (init=normal has): refused as key=, +key= and ++key= alike."""
    res = trainlab(["train", "init=xavier", f"{prefix}init.std=0.5"], tmp_path, cli_env)
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "init.std" in res.stderr, res.stderr
    assert not (tmp_path / "outputs").exists()


def test_sweep_precheck_runs_the_jobs_own_validation(tmp_path, cli_env):
    # valid alone, invalid together: refused before any job starts, no sweep folder
    bad = trainlab(["train", "-m", "norm=none,instancenorm", *FAST], tmp_path, cli_env)
    assert bad.returncode == 2 and "instance norm needs conv feature maps" in bad.stderr, bad.stderr
    assert not (tmp_path / "outputs").exists()
    # a key that only exists under the swept options: each job composes, so the sweep runs
    good = trainlab(["train", "-m", "augment=crop,standard", "augment.crop.padding=1", *FAST,
                     "hydra.sweep.dir=outputs/sweeps/s"], tmp_path, cli_env)
    assert good.returncode == 0, good.stderr[-2000:]
    jobs = sorted(p for p in (tmp_path / "outputs" / "sweeps" / "s").iterdir() if p.is_dir())
    assert len(jobs) == 2 and all(json.loads((j / "summary.json").read_text())["status"] == "completed" for j in jobs)


def test_run_prints_its_choices_and_print_config_prints_the_tree(tmp_path, cli_env):
    res = trainlab(["train", "optimizer=momentum", "optimizer.lr=0.05", "trainer.print_config=true", *FAST],
                   tmp_path, cli_env)
    assert res.returncode == 0, res.stderr
    log = next((tmp_path / "outputs" / "runs").iterdir()) / "train.log"
    text = log.read_text()
    block = text[text.index("choices:"):]
    options, overrides = block.splitlines()[1], block.splitlines()[2]
    assert "optimizer=momentum" in options and "activation=" not in options  # only what differs
    assert "optimizer.lr=0.05" in overrides
    assert "config" in res.stdout and "momentum: 0.9" in res.stdout and "lr: 0.05" in res.stdout  # the rich tree


def test_list_shows_options_descriptions_and_keys_with_units(tmp_path, cli_env):
    res = trainlab(["list", "optimizer", "norm"], tmp_path, cli_env)
    assert res.returncode == 0, res.stderr
    adam = res.stdout[res.stdout.index("  adam "):]
    assert "lr = 0.001" in adam.splitlines()[1] + adam and "learning rate" in adam
    assert "groupnorm" in res.stdout and "groups = " in res.stdout
    everything = trainlab(["list"], tmp_path, cli_env)
    for group in ("dataset", "preprocess", "arch", "activation", "init", "norm", "regularizer", "optimizer",
                  "schedule", "augment", "loss", "trainer", "experiment"):
        assert f"\n{group}  (" in "\n" + everything.stdout, group
    bad = trainlab(["list", "optimiser"], tmp_path, cli_env)
    assert bad.returncode == 2 and "optimiser" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_bash_completion_completes_options_and_keys(tmp_path, cli_env):
    """`eval "$(trainlab train -sc install=bash)"`, then TAB after `trainlab train optimizer=ad` and `optimizer.l`."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "trainlab").write_text(f"#!/bin/sh\nexec {sys.executable} -m trainlab \"$@\"\n")
    (bindir / "trainlab").chmod(0o755)
    script = textwrap.dedent("""
        eval "$(trainlab train -sc install=bash)"
        complete_line() {
            COMP_LINE="$1"; COMP_POINT=${#1}; COMP_WORDS=($1); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
            hydra_bash_completion; echo "${COMPREPLY[@]}"
        }
        complete_line "trainlab train optimizer=ad"
        complete_line "trainlab train optimizer.l"
    """)
    env = cli_env | {"PATH": f"{bindir}{os.pathsep}{cli_env.get('PATH', os.environ['PATH'])}"}
    res = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    options, keys = res.stdout.strip().splitlines()[-2:]
    assert "optimizer=adam" in options.split() and "optimizer=adagrad" in options.split(), res.stdout
    assert "optimizer.lr=" in keys.split() and "optimizer.lr_scaling." in keys.split(), res.stdout


def test_the_import_graph_has_no_cycle():
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "import_graph.py")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


def test_docs_plugin_example_works_as_written(tmp_path, cli_env):
    """The docs' "Your own model" example (docs/how-to/own-model.md, moved from the README): its Python
    file and shell lines, run as they stand."""
    section = (REPO / "docs" / "how-to" / "own-model.md").read_text()
    python = section[section.index("```python\n") + 10:]
    python = python[:python.index("```")]
    shell = section[section.index("```bash\n") + 8:]
    shell = shell[:shell.index("```")]
    assert python.startswith("# mynets.py\n") and "trainlab train arch=tiny" in shell
    (tmp_path / "mynets.py").write_text(python)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "trainlab").write_text(f"#!/bin/sh\nexec {sys.executable} -m trainlab \"$@\"\n")
    (bindir / "trainlab").chmod(0o755)
    env = dict(cli_env)  # PYTHONPATH, if any, names the checkout: the plugin is found in the working folder
    env["PATH"] = f"{bindir}{os.pathsep}{cli_env.get('PATH', os.environ['PATH'])}"
    res = subprocess.run(["bash", "-ec", shell], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    run = next((tmp_path / "outputs" / "runs").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["num_params"] == 64 * 32 + 32 + 32 * 10 + 10


def test_a_second_writer_is_refused_naming_the_holder(tmp_path, cli_env):
    """Another process holds the run folder's lock: `train` into it is refused in one line naming that
    process, and the folder is left as it was; once the holder is gone (even killed), the folder is free."""
    import signal
    import time

    run = tmp_path / "outputs" / "runs" / "taken"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from trainlab.app.folder_lock import FolderLock
        FolderLock.acquire(Path({str(run)!r}), "hydra.run.dir")
        print("locked", flush=True)
        time.sleep(120)
    """)], cwd=tmp_path, env=cli_env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = sorted(p.name for p in run.iterdir())
        res = trainlab(["train", *FAST, f"hydra.run.dir={run}"], tmp_path, cli_env)
        assert res.returncode == 2, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1 and f"process {holder.pid} is writing it" in res.stderr
        assert sorted(p.name for p in run.iterdir()) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    time.sleep(0.1)
    res = trainlab(["train", *FAST, f"hydra.run.dir={run}"], tmp_path, cli_env)
    assert res.returncode == 0, res.stderr
