#!/usr/bin/env bash
# Installs what cudaembed builds with, from Debian, and what the Python module builds and tests with,
# from PyPI, into a venv at .venv (Debian's Python is externally managed, PEP 668), which CMake looks
# for first. The CUDA Toolkit (nvcc, cuRAND, cuBLAS, CCCL, NVTX) is expected to be installed already,
# as on the project's machines; without it, CMake builds the CPU backend alone, and this script says so.
set -euo pipefail

packages=(cmake ninja-build g++ pkg-config catch2 libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  librandom123-dev libeigen3-dev libcairo2-dev libpng-dev fonts-dejavu-core libgif-dev ffmpeg clang libclang-rt-14-dev
  libopenmpi-dev openmpi-bin python3-venv python3-dev)

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The Python module (python/): nanobind and scikit-build-core build it, numpy and pytest test it.
# Pinned, so that every machine builds and tests with the same versions (pyproject.toml's lower
# bounds allow these).
python_packages=(nanobind==2.9.2 scikit-build-core==0.11.6 numpy==2.4.6 pytest==9.0.2)
# CUDAEMBED_VENV names another venv to make or complete (.ci/run checks `pip install .` in a fresh one).
venv="${CUDAEMBED_VENV:-$(cd "$(dirname "$0")/.." && pwd)/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  echo "install-deps: creating the Python venv $venv"
  python3 -m venv "$venv"
fi
# pip takes seconds to start: ask it only when the venv lacks a pinned version.
if ! "$venv/bin/python" - "${python_packages[@]}" <<'EOF'; then
import sys
from importlib.metadata import PackageNotFoundError, version

for spec in sys.argv[1:]:
    name, wanted = spec.split("==")
    try:
        if version(name) != wanted:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
EOF
  echo "install-deps: installing ${python_packages[*]} into $venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "${python_packages[@]}"
fi

if ! command -v nvcc >/dev/null 2>&1; then
  if [ -x /usr/local/cuda/bin/nvcc ]; then
    echo "install-deps: nvcc is at /usr/local/cuda/bin but not on PATH, so cmake will build the CPU backend only;" \
      "for CUDA too: export PATH=/usr/local/cuda/bin:\$PATH" >&2
  else
    echo "install-deps: nvcc not found, so cmake will build the CPU backend only;" \
      "for CUDA too, install the CUDA Toolkit (12.4 or newer)" >&2
  fi
fi
