#!/usr/bin/env bash
# Download, on a machine with package-index access, the wheels the GPU check installs offline:
# exllamav2 and what it imports at run time, transformers + peft for the reference models, and
# this project's own light dependencies. Not torch (the GPU machine brings its CUDA build).
#   PYVER=312 tests/gpu/fetch_wheels.sh        # target Python 3.12; default: this venv's Python
# Wheels land in tests/gpu/wheels (git-ignored; never commit them). Total ~45 MB for one Python version.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
PYVER=${PYVER:-$($PY -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')}
OUT=${WHEELS:-tests/gpu/wheels}
mkdir -p "$OUT"
report=$(mktemp)
trap 'rm -f "$report"' EXIT
# Resolve versions once (here), then fetch each as a binary wheel for the target Python.
$PY -m pip install --dry-run --ignore-installed --quiet --report "$report" \
    "exllamav2==0.3.2" transformers peft tokenizers safetensors ninja pillow rich \
    pydantic jinja2 platformdirs click numpy pytest
pins=$($PY - "$report" <<'PYEOF'
import json, sys
# torch and its own dependencies come with the GPU machine; pandas/fastparquet/websockets are
# only used by exllamav2's conversion and server scripts (exllamav2 is installed with --no-deps).
skip = {"torch", "sympy", "mpmath", "networkx", "triton", "setuptools", "pandas", "fastparquet",
        "cramjam", "websockets", "python-dateutil", "pytz", "tzdata", "six"}
for item in json.load(open(sys.argv[1]))["install"]:
    name = item["metadata"]["name"].lower()
    if name in skip or name.startswith(("nvidia-", "cuda-")):
        continue
    print(f'{name}=={item["metadata"]["version"]}')
PYEOF
)
# shellcheck disable=SC2086
$PY -m pip download --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform linux_x86_64 -d "$OUT" $pins
du -sh "$OUT"
