"""The Python versions pyproject.toml claims are those the pinned versions install on: for each
claimed minor version, constraints.txt resolves to wheels only (no build from source but for
antlr4-python3-runtime, Hydra's pure-Python parser runtime that PyPI has only as an sdist).
Needs PyPI: skipped with the reason when it cannot be reached."""
import json
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SDIST_ONLY = "antlr4-python3-runtime"


def claimed_versions() -> list[str]:
    from packaging.specifiers import SpecifierSet

    text = (ROOT / "pyproject.toml").read_text()
    spec = SpecifierSet(re.search(r'^requires-python = "([^"]+)"', text, re.M).group(1))
    return [f"3.{minor}" for minor in range(8, 30) if f"3.{minor}.0" in spec]


def test_the_claim_is_a_closed_range_the_readme_repeats():
    versions = claimed_versions()
    assert versions == [f"3.{m}" for m in range(11, 11 + len(versions))] and len(versions) >= 2
    assert f"Python {versions[0]} to {versions[-1]}" in (ROOT / "README.md").read_text()


def _pypi_reachable() -> str | None:
    try:
        socket.create_connection(("pypi.org", 443), timeout=3).close()
        return None
    except OSError as err:
        return f"PyPI unreachable ({err}): the resolution per Python version needs it"


def _uv() -> str | None:
    local = Path(sys.executable).parent / "uv"
    return str(local) if local.is_file() else shutil.which("uv")


@pytest.mark.slow  # ~10-20 s a version over the network
@pytest.mark.parametrize("python", claimed_versions())
def test_constraints_resolve_to_wheels_for_each_claimed_python(python, tmp_path):
    unreachable = _pypi_reachable()
    if unreachable:
        pytest.skip(unreachable)
    uv = _uv()
    if uv:
        cmd = [uv, "pip", "compile", "--quiet", "--python-version", python, "--python-platform",
               "x86_64-manylinux_2_28", "--only-binary", ":all:", "--no-binary", SDIST_ONLY,
               "pyproject.toml", "--extra", "dev", "-c", "constraints.txt", "-o", str(tmp_path / "resolved.txt")]
    else:  # pip resolves the same way, slower (it fetches each candidate's metadata in turn)
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report",
               str(tmp_path / "resolved.json"), "--python-version", python, "--only-binary=:all:",
               f"--no-binary={SDIST_ONLY}", "-c", "constraints.txt", ".[dev]"]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"Python {python}: {res.stderr[-1500:]}"
    if uv:
        resolved = set(re.findall(r"^([a-z0-9_.-]+==\S+)", (tmp_path / "resolved.txt").read_text().lower(), re.M))
    else:
        report = json.loads((tmp_path / "resolved.json").read_text())
        resolved = {f"{i['metadata']['name'].lower()}=={i['metadata']['version']}" for i in report["install"]}
    assert {"torch==2.14.1", "matplotlib==3.11.2", "numpy==2.4.6", "hydra-core==1.3.8"} <= resolved, python
