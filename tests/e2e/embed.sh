# e2e: examples/embed, a C program linked with an object file and header
# that nnc emits, against the interpreter.
#   sh embed.sh NNC NNC_INTERP SOURCE_DIR RUNTIME_BUILD_DIR
# ($NNC_RUNTIME_DIR, when set, replaces RUNTIME_BUILD_DIR, as for nnc.)
nnc=$1 interp=$2 root=$3 rt=${NNC_RUNTIME_DIR:-$4}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }
src=$root/examples/mlp_tiny.nn

"$nnc" build "$src" --emit=obj -o "$tmp/mlp_tiny.o" || { echo "FAIL: nnc build"; exit 1; }
[ -s "$tmp/mlp_tiny.h" ] || { echo "FAIL: no mlp_tiny.h"; exit 1; }
for m in "MLP_TINY_BATCH 4" "MLP_TINY_INPUT_X_DIMS {4, 4}" "MLP_TINY_OUTPUT_LOGITS_NUMEL 12" \
         "MLP_TINY_PARAM_COUNT 67" "MLP_TINY_ARENA_BYTES" "MLP_TINY_E_MISMATCH"; do
  grep -qF "#define $m" "$tmp/mlp_tiny.h" || grep -qF "$m" "$tmp/mlp_tiny.h" ||
    fail "mlp_tiny.h lacks '$m'"
done
# A runtime built with sanitizers needs them at link time too.
san=
nm "$rt/libnnrt.a" 2>/dev/null | grep -q __asan && san=-fsanitize=address,undefined
${CC:-cc} -std=c11 -Wall -Wextra -Werror -I "$tmp" -I "$root/runtime" \
  "$root/examples/embed/main.c" "$tmp/mlp_tiny.o" "$rt/libnnrt.a" \
  -fopenmp -lz -lm $san -o "$tmp/embed" || { echo "FAIL: cc"; exit 1; }

"$tmp/embed" --save "$tmp/w.safetensors" >"$tmp/out1" || fail "embed exited $?"
"$tmp/embed" --load "$tmp/w.safetensors" >"$tmp/out2" || fail "embed --load exited $?"
cmp -s "$tmp/out1" "$tmp/out2" || fail "loaded weights give other outputs"
grep -q "^logits\[3\] =" "$tmp/out1" || fail "embed printed no logits[3]"

# The interpreter on the same weights and input.
"$interp" npy "$tmp/x.npy" f32 4 4 pattern || fail "nnc_interp npy"
"$interp" run "$src" --weights "$tmp/w.safetensors" --input "x=$tmp/x.npy" \
  --output "$tmp/ref.npy" || fail "nnc_interp run"
"$interp" print "$tmp/ref.npy" >"$tmp/ref" || fail "nnc_interp print"
sed -n 's/^logits\[[0-9]*\] = //p' "$tmp/out1" | tr ' ' '\n' >"$tmp/got"
[ "$(wc -l <"$tmp/got")" = 12 ] || fail "embed printed $(wc -l <"$tmp/got") numbers, not 12"
paste "$tmp/got" "$tmp/ref" | awk '
  { d = $1 - $2; if (d < 0) d = -d; r = $2 < 0 ? -$2 : $2
    if (d > 1e-4 + 1e-3 * r) { print "FAIL: element " NR-1 ": " $1 " vs " $2; bad = 1 } }
  END { exit bad }' || status=1

# Errors come back as codes with a message.
"$tmp/embed" --load "$tmp/missing.safetensors" 2>"$tmp/err" && fail "missing weights accepted"
grep -q "missing.safetensors" "$tmp/err" || fail "no file name in: $(cat "$tmp/err")"
head -c 40 "$tmp/w.safetensors" >"$tmp/short.safetensors"
"$tmp/embed" --load "$tmp/short.safetensors" 2>"$tmp/err" && fail "truncated weights accepted"
grep -q "short.safetensors" "$tmp/err" || fail "no file name in: $(cat "$tmp/err")"
exit $status
