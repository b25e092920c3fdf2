"""`python -m benchmarks`: every subcommand answers --help without measuring, the throughput benchmark
runs end to end, the old scripts are gone from the docs, and results land in BENCHMARKS.md sections
(behaviour checks, not timings)."""
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ["throughput", "profile", "diag", "figures", "stacked", "threads", "eval", "small-runs", "cli", "sweep"]
OLD_SCRIPTS = ["bench.py", "bench_loops.py", "bench_parts.py", "bench_sweep.py", "small_runs.py", "cli_latency.py",
               "diag_overhead.py", "vectorized_bench.py"]


def _bench(args, cwd, env, timeout):
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("sub", [None, *SUBCOMMANDS])
def test_help_answers_without_running(sub, cli_env):
    started = time.perf_counter()
    proc = _bench([*([sub] if sub else []), "--help"], ROOT, cli_env, 30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: python -m benchmarks"), proc.stdout
    assert "OMP_WAIT_POLICY" not in proc.stdout.splitlines()[0] and "round 1" not in proc.stdout
    assert time.perf_counter() - started < 10, "--help imported something heavy or measured"


def test_parsers_do_not_import_torch():
    code = "import sys, benchmarks.__main__ as m; m.parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_old_scripts_are_gone_from_the_tree_and_the_docs():
    for name in OLD_SCRIPTS:
        assert not (ROOT / "scripts" / name).exists(), name
    texts = [ROOT / "README.md", ROOT / "BENCHMARKS.md", ROOT / "pyproject.toml",
             *(ROOT / "docs").rglob("*.md"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "scripts").glob("*"),
             *((ROOT / ".ci").glob("*") if (ROOT / ".ci").is_dir() else [])]
    pattern = re.compile(r"scripts/(" + "|".join(re.escape(n) for n in OLD_SCRIPTS) + ")")
    hits = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in texts if p.is_file() and p != Path(__file__)
            for m in pattern.finditer(p.read_text(errors="replace"))]
    assert not hits, hits


def test_every_command_runs_under_the_same_omp_policy(monkeypatch):
    from benchmarks.processes import Case, command

    monkeypatch.setenv("TRAINLAB_FIGURES", "inline")  # the caller's shell must not leak into a case
    plain = command(Case("floor", ["python", "-c", "pass"]), Path("/tmp/x"))
    waits = command(Case("sweep", ["trainlab", "train", "hydra.run.dir={dir}"], {"TRAINLAB_FIGURES": "wait"}),
                    Path("/tmp/x"))
    assert "OMP_WAIT_POLICY=PASSIVE" in plain and "OMP_WAIT_POLICY=PASSIVE" in waits
    assert "--unset=TRAINLAB_FIGURES" in plain and "TRAINLAB_FIGURES=wait" in waits
    assert waits.endswith("hydra.run.dir=/tmp/x")


def test_a_section_keeps_one_entry_per_label(tmp_path):
    from benchmarks.common import Report, write_section

    out = tmp_path / "B.md"
    out.write_text("# b\n\n<!-- notes -->\nhand-written\n")
    for label, ratio in [("before", "3.10"), ("after", "2.40"), ("after", "2.20")]:
        write_section(out, Report("figures", "Figures", label, "python -m benchmarks figures",
                                  {"wall ÷ floor": ratio}, ["| a |", "| --- |"], (1.0, 1.5)))
    text = out.read_text()
    assert text.startswith("# b\n\n<!-- notes -->\nhand-written\n")
    assert text.count("<!-- bench-section:figures ") == 1
    entries = json.loads(re.search(r"<!-- bench-section:figures (.*?) -->", text).group(1))
    assert [e["label"] for e in entries] == ["before", "after"]
    assert "| before |" in text and "3.10" in text and "2.20" in text and "2.40" not in text


def _rows(text: str) -> dict[str, list[str]]:
    """Comparator id -> the cells of its table row."""
    rows = {}
    for line in text.splitlines():
        match = re.match(r"\|\s*(C[0-4]d?)\s*\|", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in line.strip().strip("|").split("|")]
    return rows


def test_quick_mlp_throughput_reports_every_comparator(tmp_path, cli_env):
    out = tmp_path / "bench.md"
    proc = _bench(["throughput", "--quick", "--workload", "mlp", "--steps", "3", "--out", str(out)], ROOT, cli_env, 180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "OMP_WAIT_POLICY=PASSIVE" in proc.stdout
    text = out.read_text()
    rows = _rows(text)
    assert set(rows) == {"C0", "C1", "C2", "C3", "C4", "C4d"}, text
    for cid, cells in rows.items():
        throughput = cells[2]
        if cid.startswith("C4") and "not measured" in throughput:
            continue  # lightning is optional
        assert float(throughput.replace(",", "")) > 0, (cid, cells)
    assert "## Targets" in text and "C2/C1" in text and "OMP_WAIT_POLICY=PASSIVE" in text
    assert "not yet measured (no GPU in this session)" in text or "GPU results" in text


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("hyperfine") is None, reason="hyperfine is not installed")
def test_figures_writes_its_before_after_table(tmp_path, cli_env):
    out = tmp_path / "B.md"
    proc = _bench(["figures", "--jobs", "1", "--runs", "1", "--out", str(out), "--label", "smoke"], ROOT, cli_env, 600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    text = out.read_text()
    assert "| smoke |" in text and "wall ÷ floor (figures exist)" in text and "OMP_WAIT_POLICY=PASSIVE" in text
