#!/usr/bin/env bash
# Install SCALE-Sim 3.0.0 into its own venv (.venv-scalesim, git-ignored) so the
# cross-check can run it beside the project's environment. SCALE-Sim needs numpy<2.4.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="$ROOT/.venv-scalesim"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "numpy<2.4" "scalesim==3.0.0"
"$VENV/bin/python" -c "import scalesim, numpy; print('scalesim ok, numpy', numpy.__version__)"
