#!/usr/bin/env bash
# The unit layer on Python $1 (e.g. 3.12), in .venv-$1 with requirements.lock as constraints.
# Finds python$1 on PATH or under pyenv; a machine without it skips, and says so.
set -euo pipefail
version="$1"
cd "$(dirname "$0")/.."
python=""
if command -v "python$version" >/dev/null && "python$version" -c '' 2>/dev/null; then
    python="python$version"
else
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/"python$version"; do
        [ -x "$candidate" ] && python="$candidate"
    done
fi
if [ -z "$python" ]; then
    echo "== Python $version: not on this machine (neither python$version on PATH nor pyenv); skipped"
    exit 0
fi
venv=".venv-$version"
stamp=".make/venv-$version"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements.lock -nt "$stamp" ]; then
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q -c requirements.lock -e '.[dev,cluster]'
    mkdir -p .make && touch "$stamp"
fi
echo "== Python $("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])'): unit layer"
"$venv/bin/python" -m pytest tests/unit -q -p no:randomly -m "not integration and not slow and not live"
