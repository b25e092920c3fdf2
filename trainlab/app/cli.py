"""`trainlab <command>`: the dispatch. Nothing here imports torch.

Each command is a function taking its argument list and returning an exit code,
imported on first use. Bad input is one line on stderr and exit code 2, with no
traceback unless HYDRA_FULL_ERROR=1 or TRAINLAB_VERBOSE=1 is set.
"""
import importlib
import os
import signal
import sys
import threading

from trainlab.app.prechecks.env import check_environment
from trainlab.errors import ConfigError, Stopped

# name -> (module, function, one-line summary, usage)
COMMANDS = {
    "train": ("trainlab.app.launch", "train_command", "train one model, or a sweep with -m",
              "trainlab train [group=option ...] [key=value ...] [-m] [--cfg job] [--help]"),
    "resume": ("trainlab.app.launch", "resume_command", "continue a run from its checkpoints/last.pt, in its folder",
               "trainlab resume RUN_DIR [key=value ...]"),
    "resume-sweep": ("trainlab.app.launch", "resume_sweep_command",
                     "run a sweep's failed, interrupted and missing jobs again, keeping the rest",
                     "trainlab resume-sweep SWEEP_DIR [key=value ...]"),
    "list": ("trainlab.app.catalogue", "list_command", "every config group's options, their descriptions and keys",
             "trainlab list [GROUP ...]"),
    "table": ("trainlab.sweep.cli", "table_main", "the ablation table of a sweep (mean ± std over seeds/folds)",
              "trainlab table SWEEP_DIR ... [--metric ...] [--by ...]"),
    "plot": ("trainlab.engine.figures", "plot_command", "redraw the figures of runs or of a sweep's jobs",
             "trainlab plot RUN_OR_SWEEP ..."),
    "ensemble": ("trainlab.app.ensemble_command", "ensemble_main", "average trained runs' predictions on the test set",
                 "trainlab ensemble PATH ... [--snapshots] [--top K --by val_acc]"),
    "eval": ("trainlab.app.eval_command", "eval_command", "score a checkpoint on a split: top-1, top-5, per class, confusion",
             "trainlab eval RUN_OR_CHECKPOINT [split=test|val|train] [dataset=NAME] [dataset.KEY=VALUE]"),
    "check": ("trainlab.app.diagnose_entry", "check_command",
              "sanity checks: initial loss, regularization raises it, overfit 20 examples",
              "trainlab check [overrides] [--tolerance T] [--examples N]"),
    "inspect": ("trainlab.app.diagnose_entry", "inspect_command",
                "per-layer activation/gradient statistics at init", "trainlab inspect [overrides] [--gaussian] [--batch N]"),
    "gradcheck": ("trainlab.app.diagnose_entry", "gradcheck_command",
                  "backprop against finite differences, per parameter tensor", "trainlab gradcheck [overrides]"),
    "lr-find": ("trainlab.app.diagnose_entry", "lr_find_command",
                "learning-rate range test with the configured optimizer", "trainlab lr-find [overrides] [--steps N]"),
}
# Commands whose first argument is a folder: `--help` there is answered here, not taken for a folder.
FOLDER_COMMANDS = {"resume": ("RUN_DIR", "a run folder to resume, e.g. outputs/runs/<run>"),
                   "resume-sweep": ("SWEEP_DIR", "a sweep folder to resume, e.g. outputs/sweeps/<sweep>")}
COMPLETION_FLAGS = ("-sc", "--shell-completion")


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: trainlab <command> [args]   (trainlab <command> --help for one command)", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {summary}" for name, (_, _, summary, _) in COMMANDS.items()]
    lines += ["", "  --version   the installed trainlab version"]
    return "\n".join(lines)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    import trainlab

    try:
        return installed("trainlab")
    except PackageNotFoundError:  # a source checkout on PYTHONPATH
        return trainlab.__version__


def _folder_command_help(command: str, args: list[str]) -> str | None:
    """The help of resume / resume-sweep, or None; a missing folder argument is bad input."""
    name, valid = FOLDER_COMMANDS[command]
    if args and args[0] in ("-h", "--help"):
        _, _, summary, use = COMMANDS[command]
        return f"usage: {use}\n\n{summary}.\n{name}: {valid}; the overrides are added to the ones it was started with."
    if not args or args[0].startswith("-"):
        raise ConfigError(name, args[0] if args else "", valid)
    return None


def _completion_args(args: list[str]) -> list[str]:
    """Hydra's bash completion calls `trainlab -sc query=bash` with the line being completed in
    COMP_LINE: the `train` word is taken out of it so Hydra sees the overrides where it expects."""
    line = os.environ.get("COMP_LINE", "")
    words = line.split(" ")
    if len(words) > 1 and words[1] == "train":
        os.environ["COMP_LINE"] = " ".join([words[0], *words[2:]])
        point = int(os.environ.get("COMP_POINT", len(line)))
        os.environ["COMP_POINT"] = str(max(len(words[0]), point - len("train ")))
    return args


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if args[0] in ("--version", "-V", "version"):
        print(f"trainlab {version()}")
        return 0
    if args[0] in COMPLETION_FLAGS:  # bash completion querying the app: it is `trainlab train`'s
        if any(a.startswith("query=") for a in args[1:]):
            from trainlab.app.completion import answer  # subcommands, flags, options and keys without Hydra

            found = answer()
            if found is not None:
                print(found)
                return 0
        args = ["train", *_completion_args(args)]
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"error: command={command!r} is not valid: choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module, function, _, _ = COMMANDS[command]
    previous = _stop_on_sigterm()
    try:
        if command in FOLDER_COMMANDS:
            text = _folder_command_help(command, rest)
            if text is not None:
                print(text)
                return 0
        check_environment()  # TRAINLAB_FIGURES, TRAINLAB_CONFIG_PATH (trainlab.app.prechecks.env)
        return getattr(importlib.import_module(module), function)(rest)
    except ConfigError as err:
        from trainlab.app.job import verbose

        if verbose():
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the file system refused a path the command was given (too long, a folder, a loop)
        from trainlab.app.job import verbose

        if verbose():
            raise
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        print(f"interrupted ({getattr(err, 'signal_name', 'SIGINT')})", file=sys.stderr)
        return 128 + getattr(err, "signum", 2)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stop_on_sigterm():
    """Until training installs its own handlers, SIGTERM stops the command as Ctrl-C does (Stopped,
    a KeyboardInterrupt): a run stopped while it starts up still says so in its folder. Only where
    nobody else handles SIGTERM; returns the handlers to put back. SIGINT gets the same import-safe
    handler where it has Python's default one."""
    previous = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, stop_unless_importing)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, stop_unless_importing)
    return previous


def stop_unless_importing(signum, frame) -> None:
    """Raise Stopped, except inside an import or inside the config libraries' own code: an exception
    raised there can be swallowed or leave them half done (a SIGTERM during numpy's import once left
    `numpy.matrix` missing and the run trained on to fail later; one inside OmegaConf's node building
    left a config object broken). There the signal is sent again a moment later, until it lands
    elsewhere."""
    if importing(frame) or in_config_library(frame):
        timer = threading.Timer(RESEND_S, os.kill, (os.getpid(), signum))
        timer.daemon = True
        timer.start()
        return
    raise Stopped(signum)


RESEND_S = 0.02  # an import in progress usually ends within this; else the signal comes back again
CONFIG_LIBRARIES = (f"{os.sep}omegaconf{os.sep}", f"{os.sep}hydra{os.sep}", f"{os.sep}yaml{os.sep}")


def importing(frame) -> bool:
    """Is `frame` (where a signal interrupted the main thread) inside the import machinery?"""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def in_config_library(frame) -> bool:
    """Is `frame` inside OmegaConf's, Hydra's or PyYAML's code (building or reading configs), directly
    or through the frames it called (contextlib, typing: a signal once landed in contextlib inside
    OmegaConf's flag handling and left a config broken)? The walk outwards stops at trainlab's own
    code: a job's training runs inside Hydra's frames, and a signal there is trainlab's to take."""
    while frame is not None:
        name = frame.f_code.co_filename
        if any(part in name for part in CONFIG_LIBRARIES):
            return True
        if name.startswith(TRAINLAB_ROOT):
            return False
        frame = frame.f_back
    return False


TRAINLAB_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # the package, as frames name it


def entry() -> None:
    # torch's idle OpenMP threads sleep instead of spinning (unless the environment says otherwise): with
    # a spinning pool, any other busy process on the cores (another job, a figure drawer, another user)
    # stalls every parallel op; 10 epochs of the default run took 21.6 s instead of 1.0 s next to such
    # load on 2 cores. Set before torch is imported (nothing here imports it); results do not change.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    exit_now(main())


def exit_now(code: int) -> None:
    """End the process with `code` once everything registered to run at exit has run, skipping the
    interpreter's teardown: with torch (and torch._dynamo, which torch.optim imports) loaded,
    freeing every module's objects one by one takes 0.8-1.1 s on this 2-core CPU, after the command's
    work is done and before the shell gets its prompt back (every command, every job of a sweep
    script, every CLI test). What teardown would still do is done here first: the atexit handlers
    (logging's flush and close, multiprocessing's and trackers' cleanups) and the flush of stdout and
    stderr. The normal exit is taken when a non-daemon thread is still running (it waits for it) and
    under a profiler, tracer or debugger (`python -m cProfile`, `coverage run`), which writes its
    results after the program returns."""
    main_thread = threading.main_thread()
    watched = sys.getprofile() is not None or sys.gettrace() is not None or (
        hasattr(sys, "monitoring") and any(sys.monitoring.get_tool(i) for i in range(6)))
    if watched or any(t is not main_thread and not t.daemon and t.is_alive() for t in threading.enumerate()):
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`trainlab list | head`): nothing left to say
            pass
    os._exit(code if isinstance(code, int) else 1)
