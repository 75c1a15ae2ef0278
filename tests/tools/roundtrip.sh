#!/bin/sh
# print -> parse -> print must be identical: `nnc build F --emit=ir` gives A;
# feeding A back (as .nnir) gives B; A and B must be byte-identical.
# usage: roundtrip.sh NNC FILE
set -eu
nnc=$1 file=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$nnc" build "$file" --emit=ir -o "$tmp/a.nnir"
"$nnc" build "$tmp/a.nnir" --emit=ir -o "$tmp/b.nnir"
if ! cmp -s "$tmp/a.nnir" "$tmp/b.nnir"; then
  echo "round trip differs for $file:"
  diff -u "$tmp/a.nnir" "$tmp/b.nnir" || true
  exit 1
fi
