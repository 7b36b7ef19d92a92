#!/usr/bin/env bash
# Install everything the tests need (first run only), start the PulseAudio null sink the audio
# tests record from, and run the test suite. Arguments go to pytest: ./test.sh -k config -x
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh --tests
eval "$(scripts/pulse-null-sink.sh start)"
trap 'scripts/pulse-null-sink.sh stop >/dev/null 2>&1 || true' EXIT
set +e
.venv/bin/python -m pytest -p no:cacheprovider "$@"
status=$?
set -e
# pytest exits 5 when a selection matches no test: that is not a success.
exit $status
