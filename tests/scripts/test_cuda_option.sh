#!/usr/bin/env bash
# CUDAEMBED_CUDA's answers, by configuring the project (no build) in temporary folders: AUTO without
# nvcc configures the CPU backend alone, ON without nvcc stops with a message naming nvcc and the
# OFF option, OFF never looks, and ON finds the nvcc an earlier AUTO did not. gpu-pack.sh refuses
# a CPU-only build.
# Usage: tests/scripts/test_cuda_option.sh SOURCE_DIR CMAKE     (ctest runs it as cuda_option)
set -uo pipefail
src=$1 cmake=$2
without_nvcc=$src/tests/scripts/without_nvcc.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
# configure DIR ARG...: configures SOURCE_DIR into DIR (no tests, so no Catch2 discovery) with the
# cmake arguments ARG..., through the command in $through (if any); the output in $out.
through=()
configure() {
  local dir=$1
  shift
  out=$("${through[@]}" "$cmake" -S "$src" -B "$tmp/$dir" -G Ninja -DCUDAEMBED_BUILD_TESTS=OFF "$@" 2>&1)
}
# cpu_only DIR: what DIR was configured to build has no CUDA in it.
cpu_only() {
  grep -qF "the CPU backend only" <<<"$out" || fail "$1: no 'the CPU backend only' line"
  grep -q "\.cu\b\|nvcc" "$tmp/$1/build.ninja" && fail "$1: build.ninja compiles CUDA"
  grep -qF "kWithCuda = false" "$tmp/$1/generated/cudaembed/version.hpp" || fail "$1: version.hpp says CUDA"
}

through=("$without_nvcc")
configure auto || fail "AUTO without nvcc failed to configure: $out"
cpu_only auto
# There is nothing for a GPU machine to run, and gpu-pack.sh says so rather than "build it first".
pack=$(bash "$src/scripts/gpu-pack.sh" "$tmp/auto" "$tmp/pack" 2>&1) && fail "gpu-pack.sh packed a CPU-only build"
grep -qF "is a CPU-only build" <<<"$pack" || fail "gpu-pack.sh on a CPU-only build: $pack"

configure on -DCUDAEMBED_CUDA=ON && fail "ON without nvcc configured"
{ grep -qF "CMake finds no nvcc" <<<"$out" && grep -qF -- "-DCUDAEMBED_CUDA=OFF" <<<"$out"; } ||
  fail "ON without nvcc: the message does not name nvcc and the OFF option: $out"

through=()
configure off -DCUDAEMBED_CUDA=OFF || fail "OFF failed to configure: $out"
cpu_only off

# Where nvcc is on PATH: ON after AUTO's cached NOTFOUND looks again and builds CUDA.
if command -v nvcc >/dev/null; then
  configure auto -DCUDAEMBED_CUDA=ON || fail "ON after AUTO without nvcc failed to configure: $out"
  grep -qF "CPU and CUDA backends" <<<"$out" || fail "ON after AUTO: no CUDA backend: $out"
fi

if command -v shellcheck >/dev/null; then
  sc=$(shellcheck "$without_nvcc" "$0" "$src/.ci/run" 2>&1) || fail "shellcheck: $sc"
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "OK: AUTO, ON and OFF configure as documented; gpu-pack.sh refuses a CPU-only build"
