# e2e: bad input to an executable nnc built gets one clear message and a
# non-zero exit, never a crash: wrong input shape or dtype, missing or
# garbage input, truncated or corrupted weights, unknown names.
#   sh malformed.sh NNC NNC_INTERP SOURCE_DIR
nnc=$1 interp=$2 root=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }
exe=$tmp/mlp_tiny

# expect_error WHAT ARGS...: the program fails (1 or 2, no signal) and
# says WHAT on stderr.
expect_error() {
  what=$1
  shift
  "$exe" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  if [ "$rc" = 0 ] || [ "$rc" -ge 128 ]; then
    fail "mlp_tiny $*: exit status $rc"
  elif ! grep -qF -- "$what" "$tmp/err"; then
    fail "mlp_tiny $*: expected '$what' in:"
    sed 's/^/  | /' "$tmp/err"
  fi
}

"$nnc" build "$root/examples/mlp_tiny.nn" -o "$exe" || { echo "FAIL: nnc build"; exit 1; }
"$exe" init --save "$tmp/w.safetensors" || { echo "FAIL: init"; exit 1; }
"$interp" npy "$tmp/x.npy" f32 4 4
"$interp" npy "$tmp/x34.npy" f32 3 4
"$interp" npy "$tmp/xi.npy" i32 4 4
W="--weights $tmp/w.safetensors"

"$exe" predict $W --input "x=$tmp/x.npy" --output "$tmp/y.npy" || fail "good predict failed"
expect_error "has shape [3,4], the model expects [4,4]" predict $W --input "x=$tmp/x34.npy" --output "$tmp/y.npy"
expect_error "has dtype i32, the model expects f32" predict $W --input "x=$tmp/xi.npy" --output "$tmp/y.npy"
expect_error "nothere.npy" predict $W --input "x=$tmp/nothere.npy" --output "$tmp/y.npy"
printf 'not an npy file at all' >"$tmp/garbage.npy"
expect_error "garbage.npy" predict $W --input "x=$tmp/garbage.npy" --output "$tmp/y.npy"
expect_error "nope=" predict $W --input "nope=$tmp/x.npy" --output "$tmp/y.npy"
expect_error "--weights" predict --input "x=$tmp/x.npy" --output "$tmp/y.npy"

# Weights: truncated, a header that lies about its length, an offset past
# the end, a missing tensor.
size=$(wc -c <"$tmp/w.safetensors")
head -c $((size - 10)) "$tmp/w.safetensors" >"$tmp/trunc.safetensors"
expect_error "trunc.safetensors" predict --weights "$tmp/trunc.safetensors" --input "x=$tmp/x.npy" --output "$tmp/y.npy"
head -c 20 "$tmp/w.safetensors" >"$tmp/short.safetensors"
expect_error "short.safetensors" predict --weights "$tmp/short.safetensors" --input "x=$tmp/x.npy" --output "$tmp/y.npy"
{ printf '\377\377\377\377\000\000\000\000'; tail -c +9 "$tmp/w.safetensors"; } >"$tmp/lying.safetensors"
expect_error "lying.safetensors" predict --weights "$tmp/lying.safetensors" --input "x=$tmp/x.npy" --output "$tmp/y.npy"
# The JSON header renamed one tensor: the loader names what is missing.
sed 's/hidden\.b/hidden\.q/' "$tmp/w.safetensors" >"$tmp/renamed.safetensors"
expect_error "hidden.b" predict --weights "$tmp/renamed.safetensors" --input "x=$tmp/x.npy" --output "$tmp/y.npy"
[ ! -e "$tmp/y2.npy" ] || fail "an output was written by a failed run"

expect_error "" frobnicate
exit $status
