# e2e: one example through nnc and through the reference interpreter.
#   sh example.sh NNC NNC_INTERP EXAMPLE.nn [-D NAME=VALUE]...
# Builds the executable, checks `info`, runs `init --save`, draws random
# inputs, runs `predict`, runs @forward in the interpreter on the same
# weights and inputs, and compares every output (rtol 1e-3, atol 1e-4:
# f32 kernels sum in another order than the interpreter, and fused
# transcendental functions differ in the last bits).
nnc=$1 interp=$2 src=$3
shift 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }
name=$(basename "$src" .nn)

"$nnc" build "$src" "$@" -o "$tmp/$name" || { echo "FAIL: nnc build"; exit 1; }
"$tmp/$name" info >"$tmp/info" || fail "info exited $?"
for want in "model: " "inputs:" "outputs:" "parameters:" "arena bytes:" "flops per forward:"; do
  grep -q "$want" "$tmp/info" || fail "info lacks '$want'"
done
"$tmp/$name" init --save "$tmp/w.safetensors" || fail "init exited $?"
[ -s "$tmp/w.safetensors" ] || fail "init wrote no weights"

mkdir "$tmp/in"
"$interp" gen "$src" "$@" "$tmp/in" 7 || { echo "FAIL: nnc_interp gen"; exit 1; }
inputs=
for f in "$tmp"/in/*.npy; do
  inputs="$inputs --input $(basename "$f" .npy)=$f"
done
# The outputs, in order, from `info`.
outs=$(sed -n '/^outputs:/,/^parameters:/p' "$tmp/info" | sed -n 's/^  \([^:]*\):.*/\1/p')
oargs= rargs=
for o in $outs; do
  oargs="$oargs --output $o=$tmp/$o.nnc.npy"
  rargs="$rargs --output $tmp/$o.ref.npy"
done
"$tmp/$name" predict --weights "$tmp/w.safetensors" $inputs $oargs ||
  fail "predict exited $?"
"$interp" run "$src" "$@" --weights "$tmp/w.safetensors" $inputs $rargs ||
  fail "nnc_interp run failed"
for o in $outs; do
  printf '%s %s: ' "$name" "$o"
  "$interp" cmp "$tmp/$o.nnc.npy" "$tmp/$o.ref.npy" 1e-3 1e-4 ||
    fail "output '$o' differs from the interpreter"
done
# Another thread count gives the same numbers (within the tolerance).
"$tmp/$name" --threads 1 predict --weights "$tmp/w.safetensors" $inputs \
  --output "$tmp/t1.npy" || fail "predict --threads 1 exited $?"
o1=$(echo $outs | cut -d' ' -f1)
"$interp" cmp "$tmp/t1.npy" "$tmp/$o1.ref.npy" 1e-3 1e-4 >/dev/null ||
  fail "1 thread differs from the interpreter"
exit $status
