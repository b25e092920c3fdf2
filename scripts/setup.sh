#!/usr/bin/env bash
# Create .venv (if missing) and install trainlab in editable mode with the tested versions pinned in
# constraints.txt.
#
# The installer is uv when it can be had: `uv` on PATH, else uv installed from PyPI into a small
# bootstrap environment (.uv-bootstrap/, ~40 MB, reused by the next run). uv downloads in parallel
# and links files from its cache: on an empty cache (PIP_NO_CACHE_DIR=1 UV_NO_CACHE=1, 2 shared cores
# at load ~7-10) this script took 86 s with uv, its bootstrap included, where pip took 208 s; the
# venv is 5.8 GB instead of 6.1 GB (measured before --compile-bytecode, below, was added; 3.2 GB of it is the CUDA
# libraries torch's PyPI wheel requires: PyPI has no CPU-only torch wheel for Linux x86-64). pip is the fallback when uv cannot be installed (no PyPI, an unsupported platform), or
# when TRAINLAB_INSTALLER=pip asks for it. PYTHON picks the interpreter (default python3; the
# project supports the versions in pyproject.toml's requires-python).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
UV_VERSION=0.13.9   # the bootstrap's uv (any recent uv on PATH is used as it is)

find_uv() {
    if [ "${TRAINLAB_INSTALLER:-uv}" = pip ]; then
        return 1
    fi
    if command -v uv >/dev/null 2>&1; then
        command -v uv
        return 0
    fi
    if [ ! -x .uv-bootstrap/bin/uv ]; then
        rm -rf .uv-bootstrap
        if ! { "$PYTHON" -m venv .uv-bootstrap \
               && .uv-bootstrap/bin/python -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"; } >&2; then
            echo "setup: could not install uv from PyPI; using pip" >&2
            rm -rf .uv-bootstrap
            return 1
        fi
    fi
    echo "$PWD/.uv-bootstrap/bin/uv"
}

if UV=$(find_uv); then
    # --seed: pip in the venv too, as `python -m venv` gives (tests build a wheel with it)
    [ -x .venv/bin/python ] || "$UV" venv --quiet --seed --python "$PYTHON" .venv
    # --compile-bytecode: .pyc files now, as pip writes them; without them, where PYTHONDONTWRITEBYTECODE
    # is set (as on the CI machine) every process compiled torch's Python again: a 2-3x slower test suite
    "$UV" pip install --quiet --compile-bytecode --python .venv/bin/python -c constraints.txt -e '.[dev]'
else
    [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -c constraints.txt -e '.[dev]'
fi
