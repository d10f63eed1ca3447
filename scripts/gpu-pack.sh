#!/usr/bin/env bash
# Packs the binaries built here, and the shared libraries they load that a GPU machine may lack, for
# scripts/gpu-check.sh to run there (carried over by the device tool).
# Usage: scripts/gpu-pack.sh [BUILD_DIR] [PACK_DIR]     (defaults: build, .gpu-pack)
# Writes PACK_DIR/bin/{cudaembed,cudaembed_gpu_tests} and PACK_DIR/lib/<soname> for every library ldd
# resolves under /lib/x86_64-linux-gnu or /usr/lib/x86_64-linux-gnu, except glibc's own, libstdc++
# and libgcc_s (every system has them) and CUDA's (the machine's toolkit provides those).
set -euo pipefail

max_mib=60
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
pack=${2:-$root/.gpu-pack}
bins=("$build/cudaembed" "$build/tests/cudaembed_gpu_tests")

if grep -qF "kWithCuda = false" "$build/generated/cudaembed/version.hpp" 2>/dev/null; then
  echo "gpu-pack: $build is a CPU-only build (no nvcc when it was configured); configure it with" \
    "-DCUDAEMBED_CUDA=ON and nvcc on PATH" >&2
  exit 2
fi
for b in "${bins[@]}"; do
  [ -x "$b" ] || { echo "gpu-pack: $b is missing; build it first (cmake --build $build)" >&2; exit 2; }
done
command -v ldd >/dev/null || { echo "gpu-pack: ldd not found" >&2; exit 2; }

# System parts every Linux has: glibc (with its loader and split-out libraries), the C++ runtime.
is_base_library() {
  case "$1" in
    linux-vdso.so.* | ld-linux*.so.* | libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | \
      libresolv.so.* | libutil.so.* | libanl.so.* | libmvec.so.* | libnsl.so.* | libstdc++.so.* | libgcc_s.so.*)
      return 0 ;;
  esac
  return 1
}

rm -rf "${pack:?}/bin" "${pack:?}/lib"
mkdir -p "$pack/bin" "$pack/lib"
cp "${bins[@]}" "$pack/bin/"

# ldd lines look like "libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1 (0x...)".
count=0
while read -r name path; do
  is_base_library "$name" && continue
  case "$path" in
    /lib/x86_64-linux-gnu/* | /usr/lib/x86_64-linux-gnu/*) ;;
    *) continue ;;  # CUDA's libraries (/usr/local/cuda/...) and anything else outside the system dirs
  esac
  case "$name" in
    libcuda.so.* | libcudart.so.* | libcublas*.so.* | libcurand.so.* | libcufft*.so.* | libcusparse*.so.* | \
      libcusolver*.so.* | libnvrtc*.so.* | libnvJitLink*.so.* | libnvidia-*) continue ;;
  esac
  cp -L "$path" "$pack/lib/$name"
  count=$((count + 1))
done < <(ldd "${bins[@]}" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | sort -u)

size_kib=$(du -sk "$pack" | awk '{ print $1 }')
size_mib=$(((size_kib + 1023) / 1024))
echo "gpu-pack: $pack: 2 binaries, $count libraries, ${size_mib} MiB"
if [ "$size_kib" -ge $((max_mib * 1024)) ]; then
  echo "gpu-pack: $pack is ${size_mib} MiB, over the ${max_mib} MiB cap (the device tool carries 64 MiB in all)" >&2
  exit 1
fi
rel=$(realpath -m --relative-to="$root" "$pack")
case "$rel" in
  ../* | /*) echo "gpu-pack: $pack is outside the repo; the device tool carries only paths inside it" >&2 ;;
  *)
    echo "gpu-pack: run it with the device tool as"
    echo "  run(carry=[\"$rel\"], command=\"bash scripts/gpu-check.sh --pack $rel\")" ;;
esac
