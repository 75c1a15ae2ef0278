#!/bin/bash
# Run the `; RUN:` (or `# RUN:`) lines of a test file, QBE/lit style.
# Substitutions: %s the file, %nnc the compiler, %FileCheck, %root the source
# tree, %not (inverts the exit status of the command after it).  A file split by lines `; -----` is run once per chunk (MLIR
# -split-input-file); each chunk holds its own RUN lines or inherits the
# file's first ones.
# usage: run_check.sh NNC FILECHECK ROOT FILE
set -eu
nnc=$1 fc=$2 root=$3 file=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
awk -v dir="$tmp" 'BEGIN{n=0; f=dir "/chunk0.nnir"}
  /^; -----/ {n++; f=dir "/chunk" n ".nnir"; next}
  {print > f}' "$file"
first_runs=$(sed -n 's/^[;#] *RUN: *//p' "$file" | head -n 1)
status=0
for chunk in "$tmp"/chunk*.nnir; do
  runs=$(sed -n 's/^[;#] *RUN: *//p' "$chunk")
  [ -n "$runs" ] || runs=$first_runs
  echo "$runs" | while IFS= read -r cmd; do
    [ -n "$cmd" ] || continue
    cmd=$(printf '%s' "$cmd" | sed -e "s|%nnc|$nnc|g" -e "s|%FileCheck|$fc|g" \
          -e "s|FileCheck|$fc|g" -e "s|%root|$root|g" -e "s|%not|sh $root/tests/tools/not.sh|g" -e "s|%s|$chunk|g")
    echo "RUN: $cmd"
    if ! bash -c "set -o pipefail; $cmd"; then
      echo "FAILED: $file ($(basename "$chunk"))"
      exit 1
    fi
  done || status=1
done
exit $status
