#!/usr/bin/env bash
# Runs a command as on a machine without the CUDA Toolkit: every PATH entry that holds an nvcc is
# dropped, and the variables through which CMake finds one (CUDACXX, CUDA_PATH, CUDAToolkit_ROOT,
# CUDA_HOME) are unset. CMake finds nvcc in no other place, so a configure under it must build the
# CPU backend alone.
# Usage: tests/scripts/without_nvcc.sh COMMAND [ARG...]
set -euo pipefail

path=""
IFS=: read -ra entries <<<"$PATH"
for dir in "${entries[@]}"; do
  [ -n "$dir" ] && [ ! -e "$dir/nvcc" ] && path="${path:+$path:}$dir"
done
PATH=$path exec env -u CUDACXX -u CUDA_PATH -u CUDAToolkit_ROOT -u CUDA_HOME "$@"
