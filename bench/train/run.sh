#!/bin/sh
# Builds nnc and libnnrt (Release, build-bench/) and runs the training-step
# benchmark: nnc's train_step beside PyTorch, one table (bench/README.md).
# Needs Debian's PyTorch for /usr/bin/python3 (apt-get install python3-torch).
# Usage: bench/train/run.sh [bench_train.py options, e.g. --threads 1 --iters 30]
set -e
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DNNC_WERROR=OFF \
  -UCMAKE_PROJECT_INCLUDE >/dev/null
log="$build/bench_train_build.log"
cmake --build "$build" -j2 --target nnc nnrt >"$log" 2>&1 || { cat "$log"; exit 1; }
uptime
exec /usr/bin/python3 "$root/bench/train/bench_train.py" --nnc "$build/nnc" \
  --runtime "$build/runtime" "$@"
