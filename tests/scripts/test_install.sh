#!/usr/bin/env bash
# `cmake --install` into a fresh prefix, then a short training run of the installed binary, which
# must read its default --data from the prefix, not from the source tree.
# Usage: tests/scripts/test_install.sh CMAKE BUILD_DIR
set -euo pipefail
cmake=$1 build=$2
prefix=$(cd "$(mktemp -d)" && pwd -P)
trap 'rm -rf "$prefix"' EXIT

"$cmake" --install "$build" --prefix "$prefix" >/dev/null
for f in bin/cudaembed share/cudaembed/data/colours.csv share/doc/cudaembed/README.md \
         share/doc/cudaembed/docs/pairs-format.md; do
  [[ -f $prefix/$f ]] || { echo "FAIL: cmake --install did not install $f"; exit 1; }
done

if ! log=$("$prefix/bin/cudaembed" train --epochs 2 --no-plot --out "$prefix/run" 2>&1); then
  echo "$log"
  echo "FAIL: the installed binary's train failed"
  exit 1
fi
echo "$log"
grep -qF "$prefix/share/cudaembed/data/colours.csv: 646 colours" <<<"$log" ||
  { echo "FAIL: the installed binary did not read $prefix/share/cudaembed/data/colours.csv"; exit 1; }
[[ -f $prefix/run/embedding.npy ]] || { echo "FAIL: no $prefix/run/embedding.npy"; exit 1; }
echo "OK: installed into $prefix and trained on its data"
