#!/usr/bin/env bash
# Install everything the tests need (first run only), start the PulseAudio null sink the audio
# tests record from, then run the linters (ruff, mypy: zero findings) and the test suite.
# Arguments go to pytest: ./test.sh -k config -x
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh --tests
eval "$(scripts/pulse-null-sink.sh start)"
trap 'scripts/pulse-null-sink.sh stop >/dev/null 2>&1 || true' EXIT
set +e
lint=0
echo "==> ruff" >&2
.venv/bin/ruff check . || lint=1
echo "==> mypy" >&2
.venv/bin/mypy || lint=1
echo "==> pytest" >&2
.venv/bin/python -m pytest -p no:cacheprovider "$@"
status=$?
set -e
# pytest exits 5 when a selection matches no test: that is not a success.
if (( status == 0 && lint != 0 )); then
    echo "tests passed, but ruff or mypy reported findings (above)" >&2
    status=1
fi
exit $status
