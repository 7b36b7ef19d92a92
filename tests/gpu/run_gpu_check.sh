#!/usr/bin/env bash
# The GPU check, one command on a CUDA machine with torch preinstalled and no internet:
#   bash tests/gpu/run_gpu_check.sh
# Installs the wheels from tests/gpu/wheels (made by tests/gpu/fetch_wheels.sh) into a venv that
# sees the machine's torch, compiles exllamav2's kernels (first import), runs tests/gpu against
# transformers/PEFT on a fabricated random Llama, benchmarks an 8B-shaped model, prints a table.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
WHEELS=${WHEELS:-tests/gpu/wheels}
WORK=${GPU_WORK:-/tmp/epistemic-gpu}
mkdir -p "$WORK"
export GPU_RESULTS="$WORK/results.jsonl" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export MAX_JOBS=${MAX_JOBS:-$(nproc)} TOKENIZERS_PARALLELISM=false
rm -f "$GPU_RESULTS"

$PY -c "import torch; assert torch.cuda.is_available(), 'CUDA not available'; print('torch', torch.__version__, '| CUDA', torch.version.cuda, '|', torch.cuda.get_device_name(0))" \
    || { echo "run_gpu_check: this machine has no usable CUDA"; exit 1; }
command -v nvcc >/dev/null || [ -n "${CUDA_HOME:-}" ] || echo "warning: nvcc not on PATH and CUDA_HOME unset: exllamav2 cannot compile its kernels"

# A venv over the system site-packages keeps the machine's CUDA torch; our pinned wheels go on top.
if [ ! -x "$WORK/venv/bin/python" ]; then
    $PY -m venv --system-site-packages "$WORK/venv" || exit 1
fi
VPY="$WORK/venv/bin/python"
ALWAYS="exllamav2 transformers peft tokenizers safetensors huggingface_hub hf_xet accelerate ninja"
$VPY - "$WHEELS" "$ALWAYS" <<'PYEOF' > "$WORK/to_install.txt"
import importlib.metadata as md, pathlib, sys
wheels, always = pathlib.Path(sys.argv[1]), set(sys.argv[2].split())
for wheel in sorted(wheels.glob("*.whl")):
    dist = wheel.name.split("-")[0].lower()
    try:
        md.version(dist)
        missing = False
    except md.PackageNotFoundError:
        missing = True
    if missing or dist in always:
        print(wheel)
PYEOF
if [ -s "$WORK/to_install.txt" ]; then
    xargs -a "$WORK/to_install.txt" "$VPY" -m pip install --quiet --no-index --no-deps --disable-pip-version-check \
        || { echo "run_gpu_check: installing wheels failed"; exit 1; }
fi
export PATH="$WORK/venv/bin:$PATH"

start=$(date +%s)
if ! "$VPY" -c "import exllamav2; print('exllamav2', exllamav2.__version__)"; then
    echo "run_gpu_check: exllamav2 failed to import/compile"; exit 1
fi
echo "{\"name\": \"exllamav2 import incl. kernel compile (s)\", \"value\": $(( $(date +%s) - start )), \"target\": \"first run only\"}" >> "$GPU_RESULTS"

timeout 330 "$VPY" -m pytest tests/gpu -q -p no:cacheprovider -o addopts="" --basetemp="$WORK/pytest" -W ignore::pytest.PytestConfigWarning
tests_rc=$?
timeout 300 "$VPY" tests/gpu/bench.py "$WORK"
bench_rc=$?
echo "pytest exit $tests_rc, bench exit $bench_rc"
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
