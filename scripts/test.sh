#!/usr/bin/env bash
# The test command: installs everything the tests need (Python packages into .venv, Java,
# Maven and Redis from Debian's packages when missing), starts Kafka and Redis, runs pytest.
#   scripts/test.sh [pytest args]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh test
scripts/services.sh start
exec .venv/bin/python -m pytest "$@"
