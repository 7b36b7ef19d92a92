#!/usr/bin/env bash
# Install everything needed (first run only) and start Epistemic Engine on its embedded default.
# Arguments are passed on: ./run.sh chat --once "Hello", ./run.sh --help
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
exec .venv/bin/epistemic "$@"
