#!/bin/sh
# Builds and runs the benchmarks of bench/ (Release build in build-bench).
# OpenBLAS must be installed (Debian: libopenblas-dev).  OPENBLAS_CORETYPE
# is unset so that OpenBLAS picks its kernel for this CPU (printed).
# Usage: bench/run.sh [gemm_bench options, e.g. -s 256,1024 -t 1,2]
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DNNC_WERROR=OFF >/dev/null
cmake --build "$build" -j2 --target gemm_bench
uptime
exec env -u OPENBLAS_CORETYPE "$build/bench/gemm_bench" "$@"
