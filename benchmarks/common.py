"""What every benchmark shares: the environment its comparators run in, the floor command, the
machine's load, markdown tables, and the BENCHMARKS.md section a result is written into.

Nothing here imports torch: `python -m benchmarks SUBCOMMAND --help` must answer at once.
"""
from __future__ import annotations

import datetime
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = REPO / "BENCHMARKS.md"

# Every comparator, in this process or as a subprocess, runs with torch's idle OpenMP threads
# sleeping: with the default (spinning) policy a plain loop was 4.5x slower next to other load, so
# a comparison that let one side spin would depend on who else was running. `trainlab` sets this
# itself (setdefault); setting it for everything here makes the floor and the plain scripts match.
OMP_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


# glibc hands large freed buffers back to the OS and page-faults them in again on the next step
# (thousands of faults per CNN step, 10-20% jitter that depends on allocator state, not on the
# comparator). Fixed thresholds keep freed memory for reuse; every comparator runs under the same
# policy. They must be set before the process starts (glibc reads them once), hence the re-exec in
# benchmarks/__main__.py; --no-malloc-tuning keeps glibc's defaults.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(4 << 30),
              "MALLOC_TOP_PAD_": str(256 << 20)}


def pin_omp_policy() -> str:
    """Set the shared OpenMP policy in this process (before torch is imported); the line to print."""
    if "torch" in sys.modules:  # too late for this process's pool: fail loudly rather than measure unevenly
        raise RuntimeError("torch was imported before OMP_WAIT_POLICY was set")
    os.environ.update(OMP_ENV)
    return "every comparator runs with " + " ".join(f"{k}={v}" for k, v in OMP_ENV.items())


def trainlab_cmd() -> list[str]:
    """The console script users run, from this interpreter's environment (else `python -m trainlab`)."""
    script = Path(sys.executable).with_name("trainlab")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "trainlab"]


# What every PyTorch training process pays before it does anything: the interpreter, `import torch`,
# and torch._dynamo, which the first torch.optim constructor imports.
FLOOR_CODE = "import torch; torch.optim.SGD(torch.nn.Linear(2,2).parameters(), lr=0.1)"
FLOOR_NAME = "floor: import torch + torch.optim.SGD"


def floor_cmd() -> list[str]:
    return [sys.executable, "-c", FLOOR_CODE]


def load1() -> float:
    return os.getloadavg()[0]


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        # changes other than the results file (which --out itself writes) mark the figures as not the commit's
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!BENCHMARKS.md"],
                               cwd=REPO, capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except OSError:
        return "unknown"


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def spread(xs: list[float]) -> float:
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None or x != x else f"{x:.{digits}f}"


def met(value: float | None, limit: float | None, at_most: bool = True) -> str:
    if limit is None or value is None or value != value:
        return ""
    ok = value <= limit if at_most else value >= limit
    return "yes" if ok else "**no**"


def table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    """A markdown table; `align` is one character per column, l or r (default: first left, rest right)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---" if a == "l" else "--:" for a in align]
    return [f"| {' | '.join(line)} |" for line in (header, rule, *rows)]


@dataclass
class Report:
    """One subcommand's result: printed, and kept in BENCHMARKS.md under `key`, one entry per label
    (the commit by default), so a run before a change and one after it sit in one table."""

    key: str                      # section id in BENCHMARKS.md, e.g. "figures"
    title: str                    # section heading
    label: str
    command: str                  # how to rerun it
    summary: dict[str, str]       # headline cells (ratios, met) for the before/after table
    detail: list[str]             # markdown lines: this run's full table and notes
    load: tuple[float, float]     # 1-minute load average before and after
    date: str = field(default_factory=now)
    commit: str = field(default_factory=git_commit)

    def lines(self) -> list[str]:
        return [f"### {self.label} ({self.date}, commit {self.commit}, 1-minute load {self.load[0]:.2f} before, "
                f"{self.load[1]:.2f} after, on {os.cpu_count()} cores)", "", f"`{self.command}`", "", *self.detail, ""]


def command_line(argv: list[str]) -> str:
    return "python -m benchmarks " + shlex.join(argv)


SECTION_RE = r"<!-- bench-section:{key} (.*?) -->\n.*?<!-- /bench-section:{key} -->\n?"


def render_section(key: str, title: str, entries: list[dict]) -> str:
    heads = list(dict.fromkeys(k for e in entries for k in e["summary"]))
    rows = [[e["label"], e["date"], e["commit"], f"{e['load'][0]:.2f} → {e['load'][1]:.2f}",
             *(e["summary"].get(h, "") for h in heads)] for e in entries]
    lines = [f"## {title}", "", *table(["run", "date", "commit", "load (1 min)", *heads], rows,
                                       "llll" + "r" * len(heads)), ""]
    for e in entries:
        lines += e["lines"]
    data = json.dumps([{k: v for k, v in e.items() if k != "lines"} | {"lines": e["lines"]} for e in entries],
                      separators=(",", ":"))
    return f"<!-- bench-section:{key} {data} -->\n" + "\n".join(lines) + f"\n<!-- /bench-section:{key} -->\n"


def write_section(path: Path, report: Report) -> None:
    """Replace this label's entry in the report's section of `path` (appended when absent)."""
    text = path.read_text() if path.is_file() else "# trainlab benchmarks\n"
    pattern = re.compile(SECTION_RE.format(key=re.escape(report.key)), re.S)
    found = pattern.search(text)
    entries = [e for e in (json.loads(found.group(1)) if found else []) if e["label"] != report.label]
    entries.append({"label": report.label, "date": report.date, "commit": report.commit, "load": list(report.load),
                    "summary": report.summary, "lines": report.lines()})
    section = render_section(report.key, report.title, entries)
    text = text[:found.start()] + section + text[found.end():] if found else text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def finish(report: Report, out: Path | None) -> int:
    print("\n".join(report.lines()))
    if out is not None:
        write_section(out, report)
        print(f"written: section '{report.key}', entry '{report.label}' of {out}")
    return 0


def add_output_options(p, default_label: str | None = None) -> None:
    p.add_argument("--out", type=Path, nargs="?", const=BENCHMARKS_MD, default=None,
                   help="also write the table into this file's section for this benchmark, replacing the "
                        "entry with the same --label (bare --out: BENCHMARKS.md)")
    p.add_argument("--label", default=default_label,
                   help="name of this entry in the section's before/after table (default: the commit)")
