"""The campaign's cases for the commands that read folders or diagnose a config: list, table, plot,
ensemble, check, inspect, gradcheck, lr-find (scripts/edge_cases.py has train, resume, resume-sweep)."""
from __future__ import annotations

from edge_cases import (BINARY, LONG, RUN, SWEEP, as_folder, flip, in_job, plugin, remove,  # noqa: F401
                        write)


def tool_cases(add) -> list:
    """Adds its cases through `add` (edge_cases.cases' own); returns nothing more to add."""
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
    return []
