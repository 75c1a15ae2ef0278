#!/bin/sh
# A malformed program must make `nnc check` exit with status 1 and print
# exactly FILE.expected on stderr.  UPDATE_GOLDEN=1 rewrites the expected
# file instead (reviewers read the diff).
# usage: run_diag.sh NNC FILE.nn
set -u
nnc=$1 file=$2
dir=$(dirname "$file") base=$(basename "$file")
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
(cd "$dir" && "$nnc" check "$base") 2>"$tmp" >/dev/null
rc=$?
if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then cp "$tmp" "$file.expected"; fi
if [ $rc -ne 1 ]; then
  echo "expected exit status 1, got $rc"; cat "$tmp"; exit 1
fi
if ! diff -u "$file.expected" "$tmp"; then
  echo "diagnostic differs for $file"; exit 1
fi
