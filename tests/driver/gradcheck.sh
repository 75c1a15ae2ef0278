# nnc gradcheck: the report format and exit status, options, and every
# example's gradients against central differences (shrunk with -D, and with
# --samples where a model cannot be shrunk, so the script stays under a
# minute in a sanitizer build).
. "$(dirname "$0")/lib.inc"

# gc NAME ARGS...: gradcheck must exit 0, print one PASS line per parameter
# and the summary with 0 failures.
gc() {
  name=$1
  shift
  run gradcheck "$@"
  if [ "$rc" != 0 ]; then
    fail "gradcheck $name: exit status $rc"
    sed 's/^/  | /' "$tmp/out" "$tmp/err"
    return
  fi
  np=$(sed -n 's/^gradcheck .*: \([0-9]*\) parameters,.*/\1/p' "$tmp/out")
  npass=$(grep -c '^  PASS  ' "$tmp/out")
  grep -q "^gradcheck: $np passed, 0 failed\$" "$tmp/out" && [ "$npass" = "$np" ] ||
    { fail "gradcheck $name: expected $np PASS lines and the summary"; sed 's/^/  | /' "$tmp/out"; }
}

ex="$root/examples"
gc mlp_tiny "$ex/mlp_tiny.nn"
gc fashion_mlp "$ex/fashion_mlp.nn" -D B=2 -D HIDDEN=16
gc soft_f1 "$ex/soft_f1.nn" -D B=24 --samples 4 --seed 2
gc soft_f1_ce "$ex/soft_f1_ce.nn" -D B=8 --samples 4
gc fashion_cnn "$ex/fashion_cnn.nn" -D B=1 --samples 1
gc char_lstm "$ex/char_lstm.nn" -D B=2 -D T=5 -D E=6 -D H=7 -D V=11
gc char_gru "$ex/char_gru.nn" -D B=2 -D T=5 -D E=6 -D H=7 -D V=11
gc char_gpt "$ex/char_gpt.nn" -D B=2 -D T=5 -D D=8 -D HEADS=2 -D LAYERS=1 -D V=11
gc mamba_copy "$ex/mamba_copy.nn" -D B=2 -D L=6 -D K=2 -D D=4 -D V=5 --samples 6
gc s4d_smnist "$ex/s4d_smnist.nn" -D B=1 -D H=3 -D N=2 -D DEPTH=1 --samples 3
gc unet "$ex/unet.nn" -D B=1 -D S=4 -D K=3 --samples 2
# Every example is covered above.
for f in "$ex"/*.nn; do
  n=$(basename "$f" .nn)
  grep -q "^gc $n " "$0" || fail "example $n has no gradcheck line in $0"
done

# The report: one line per parameter with name, type, count and errors.
run gradcheck "$ex/mlp_tiny.nn" --samples 3 --seed 5
grep -q '^gradcheck .*mlp_tiny.nn: 4 parameters, loss [0-9.]*, eps 1e-06, tol 1e-05, seed 5, up to 3 elements each$' "$tmp/out" ||
  fail "gradcheck header: $(head -1 "$tmp/out")"
grep -Eq '^  PASS  hidden.w +f32\[4,8\] +3 checked  max abs err [0-9.e+-]+  max rel err [0-9.e+-]+$' "$tmp/out" ||
  fail "gradcheck parameter line: $(sed -n 2p "$tmp/out")"
grep -Eq '^  PASS  out.b +f32\[3\] +3 checked' "$tmp/out" || fail "out.b line missing"

# A tolerance no float difference meets: every parameter fails, exit 1.
run gradcheck "$ex/mlp_tiny.nn" --tol 1e-300
[ "$rc" = 1 ] || fail "gradcheck with --tol 1e-300: exit $rc, expected 1"
grep -q '^  FAIL  hidden.w ' "$tmp/out" || fail "no FAIL line for hidden.w"
grep -q '^gradcheck: 0 passed, 4 failed$' "$tmp/out" || fail "summary of failures: $(tail -1 "$tmp/out")"

# .nnir input with a @loss works too.
cat >"$tmp/l.nnir" <<'NNIR'
param @w : f32[3,2] = zeros
func @loss(%x: f32[4,3]) -> (loss: f32[]) {
  %0 = matmul %x, @w : f32[4,2]
  %1 = tanh %0 : f32[4,2]
  %2 = mean %1 : f32[]
  return %2
}
NNIR
gc nnir "$tmp/l.nnir"

# A model without a loss, and bad options.
cat >"$tmp/noloss.nn" <<'NN'
model m {
    input x: f32[2, 4]
    output x
}
NN
expect 1 "the model has no loss" gradcheck "$tmp/noloss.nn"
expect 2 "--eps expects a positive number" gradcheck "$ex/mlp_tiny.nn" --eps abc
expect 2 "--samples expects a positive number" gradcheck "$ex/mlp_tiny.nn" --samples 0
expect 2 "unknown option '--emit=ir'" gradcheck "$ex/mlp_tiny.nn" --emit=ir
exit $status
