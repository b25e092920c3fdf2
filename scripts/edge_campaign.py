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
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TRAINLAB_FIGURES", "inline")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from edge_cases import RUN, SWEEP, TINY, Case, cases, sweep_job  # noqa: E402,F401


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
    from trainlab.app.cli import main

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
    from trainlab.app.cli import main

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
                known = f" (known: {r.case.known})" if r.case.known else ""
                print(f"NOT HANDLED  {r.case.name}: {', '.join(r.problems)}{known}\n    {r.err[-600:]}", file=out,
                      flush=True)
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
