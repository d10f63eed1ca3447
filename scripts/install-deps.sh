#!/usr/bin/env bash
# Installs what cudaembed builds with, from Debian. The CUDA Toolkit (nvcc, cuRAND, cuBLAS, CCCL,
# NVTX) is expected to be installed already, as on the project's machines; without it, CMake builds
# the CPU backend alone, and this script says so.
set -euo pipefail

packages=(cmake ninja-build g++ pkg-config catch2 libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  librandom123-dev libeigen3-dev libcairo2-dev libpng-dev fonts-dejavu-core libgif-dev ffmpeg clang libclang-rt-14-dev
  libopenmpi-dev openmpi-bin)

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

if ! command -v nvcc >/dev/null 2>&1; then
  if [ -x /usr/local/cuda/bin/nvcc ]; then
    echo "install-deps: nvcc is at /usr/local/cuda/bin but not on PATH, so cmake will build the CPU backend only;" \
      "for CUDA too: export PATH=/usr/local/cuda/bin:\$PATH" >&2
  else
    echo "install-deps: nvcc not found, so cmake will build the CPU backend only;" \
      "for CUDA too, install the CUDA Toolkit (12.4 or newer)" >&2
  fi
fi
