#!/usr/bin/env bash
# Create the project's virtualenv (.venv) and install the package with the given extras.
#   scripts/bootstrap.sh [extras]     e.g. scripts/bootstrap.sh test
# Re-running is cheap: pip only installs what changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${1:-}"
PY="${SV_PYTHON:-python3}"
"$PY" - <<'PYCHECK' || { echo "[bootstrap] Python >= 3.11 is required (set SV_PYTHON)" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PYCHECK
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  echo "[bootstrap] creating .venv" >&2
  "$PY" -m venv "$ROOT/.venv"
fi
SPEC="$ROOT"
[ -n "$EXTRAS" ] && SPEC="$ROOT[$EXTRAS]"
STAMP="$ROOT/.venv/.installed-${EXTRAS:-base}"
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
  echo "[bootstrap] installing the project (${EXTRAS:-no extras}) into .venv" >&2
  "$ROOT/.venv/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$ROOT/.venv/bin/python" -m pip install -q -e "$SPEC"
  touch "$STAMP"
fi
