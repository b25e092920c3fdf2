"""Bash completion of subcommands, their flags, options and keys, answered without Hydra or torch
(the reason a TAB takes a Python start-up instead of 1-3 s), through Hydra's installed bash function."""
import os
import re
import subprocess
import sys
import textwrap

import pytest

from trainlab.app.cli import COMMANDS, main
from trainlab.app.completion import FLAGS, candidates


def _complete(lines: list[str], tmp_path, cli_env) -> list[list[str]]:
    """COMPREPLY for each line, from Hydra's bash function as `eval "$(trainlab train -sc install=bash)"` installs it."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "trainlab").write_text(f"#!/bin/sh\nexec {sys.executable} -m trainlab \"$@\"\n")
    (bindir / "trainlab").chmod(0o755)
    calls = "\n".join(f"complete_line {line!r}" for line in lines)
    script = textwrap.dedent("""
        eval "$(trainlab train -sc install=bash)"
        complete_line() {
            COMP_LINE="$1"; COMP_POINT=${#1}; COMP_WORDS=($1); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
            [[ "$1" == *" " ]] && COMP_CWORD=${#COMP_WORDS[@]}
            COMPREPLY=(); hydra_bash_completion; echo "${COMPREPLY[@]}"
        }
    """) + calls
    env = cli_env | {"PATH": f"{bindir}{os.pathsep}{cli_env.get('PATH', os.environ['PATH'])}"}
    res = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return [line.split() for line in res.stdout.splitlines()[-len(lines):]]


def test_tab_completes_subcommands_flags_and_keys_in_bash(tmp_path, cli_env):
    (tmp_path / "sweep").mkdir()
    command, flags, table_flag, ema, eval_split, regularizer = _complete(
        ["trainlab tr", "trainlab check --max", "trainlab table sweep --wh", "trainlab train trainer.ema.",
         "trainlab eval sweep sp", "trainlab train regularizer=[l2,dropout] regularizer.l2."], tmp_path, cli_env)
    assert command == ["train"]
    assert flags == ["--max-steps"] and table_flag == ["--where"]
    assert ema == ["trainer.ema.decay=", "trainer.ema.warmup="]
    assert eval_split == ["split=test", "split=val", "split=train"]
    assert regularizer == ["regularizer.l2.apply_to=", "regularizer.l2.strength="]


def test_candidates_follow_the_options_chosen_on_the_line():
    assert "optimizer.momentum=" in candidates("trainlab train optimizer=momentum optimizer.")
    assert "optimizer.momentum=" not in candidates("trainlab train optimizer.")  # adam, the default
    assert "logger.mlflow.checkpoints=" in candidates("trainlab train logger=mlflow logger.mlflow.")
    assert {"seed=", "tags=", "optimizer=", "optimizer."} <= set(candidates("trainlab train "))
    assert "experiment=digits/activations" in candidates("trainlab train experiment=")
    assert candidates("trainlab train hydra/la") is None  # Hydra's own groups: its completion answers
    assert candidates("trainlab resume outputs/r") == []  # a folder: bash completes file names


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_completion_flags_are_the_commands_own(command, capsys):
    assert main([command, "--help"]) == 0
    shown = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", capsys.readouterr().out)) - {"--shell-completion"}
    assert shown <= set(FLAGS[command])
    if command != "train":  # train's help is Hydra's page, which names only some of Hydra's flags
        assert shown == set(FLAGS[command]) - ({"--help"} if "--help" not in shown else set())
    assert set(FLAGS) == set(COMMANDS)


def test_a_completion_query_imports_neither_hydra_nor_torch(cli_env):
    code = ("import os, sys; os.environ['COMP_LINE'] = 'trainlab train optimizer.l'; os.environ['COMP_POINT'] = '26'; "
            "from trainlab.app.cli import main; main(['-sc', 'query=bash']); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'hydra', 'omegaconf', 'torch', 'numpy'}))")
    res = subprocess.run([sys.executable, "-c", code], env=cli_env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    *answers, imported = res.stdout.split()
    assert "optimizer.lr=" in answers and imported == "[]"
