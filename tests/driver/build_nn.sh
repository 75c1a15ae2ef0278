# nnc on .nn input: check, -D, -I, --model, --emit=ir with the default
# pipeline, --emit=ast, --print-loc, and -o left untouched on errors.
. "$(dirname "$0")/lib.inc"

mkdir "$tmp/lib"
cat >"$tmp/lib/mylib.nn" <<'NN'
fn double(x: f32[..., N]) -> f32[..., N] {
    return x * 2.0
}
NN
cat >"$tmp/m.nn" <<'NN'
import "std"
const H = 8

model first {
    input x: f32[B, 4]
    output x
}

model m {
    input x: f32[B, 4]
    let y = linear(x, H) * 1.0 + 0.0
    output y
}
NN
cat >"$tmp/imp.nn" <<'NN'
import "mylib"

model m {
    input x: f32[B, 4]
    let y = double(x)
    output y
}
NN
cat >"$tmp/bad.nn" <<'NN'
import "std"

model m {
    input x: f32[2, 4]
    let w = zeros[3, 5]
    output x @ w
}
NN

# check: silent on success; -D binds B; B unbound is an error.
expect 0 "" check "$tmp/m.nn" -D B=2
[ ! -s "$tmp/out" ] && [ ! -s "$tmp/err" ] || fail "nnc check printed something on success"
expect 1 "m.nn:10:18: error:" check "$tmp/m.nn"
expect 1 "bad.nn:6:" check "$tmp/bad.nn"

# The last model by default, --model to pick another; -D overrides a const.
expect 0 "module @m" build "$tmp/m.nn" --emit=ir -D B=2
expect 0 "module @first" build "$tmp/m.nn" --emit=ir -D B=2 --model first
expect 0 "param @linear.0.w : f32[4,5]" build "$tmp/m.nn" --emit=ir -D B=2 -D H=5
# Canonicalize (the default pipeline) removes `* 1.0 + 0.0`; --passes= keeps it.
run build "$tmp/m.nn" --emit=ir -D B=2
grep -q "= mul \|constant" "$tmp/out" && fail "default pipeline kept '* 1.0 + 0.0'"
expect 0 "constant {value = 1.0}" build "$tmp/m.nn" --emit=ir -D B=2 --passes=
# The emitted IR reads back.
run build "$tmp/m.nn" --emit=ir -D B=2 -o "$tmp/m.nnir"
expect 0 "" check "$tmp/m.nnir"
# --print-loc points back at the source.
expect 0 "loc(" build "$tmp/m.nn" --emit=ir -D B=2 --print-loc

# -x nn reads a file whatever its name; -o - is stdout.
cp "$tmp/m.nn" "$tmp/m.txt"
expect 0 "module @m" build -x nn "$tmp/m.txt" --emit=ir -D B=2 -o -
expect 1 "" build -x ir "$tmp/m.nn" --emit=ir

# -I: imports from another folder.
expect 1 "mylib" check "$tmp/imp.nn" -D B=2
expect 0 "" check "$tmp/imp.nn" -D B=2 -I "$tmp/lib"
expect 0 "mul %x" build "$tmp/imp.nn" -D B=2 -I "$tmp/lib" --emit=ir

# --emit=ast prints the tree (the program is still checked); -o gets it whole.
expect 0 "(model m" build "$tmp/m.nn" --emit=ast -D B=2
expect 1 "" build "$tmp/m.nn" --emit=ast
expect 0 "" build "$tmp/m.nn" --emit=ast -D B=2 -o "$tmp/m.ast"
grep -q "(model m" "$tmp/m.ast" || fail "--emit=ast -o: no tree in the file"

# A failed build leaves -o alone and no temporary behind.
mkdir "$tmp/o"
echo old >"$tmp/o/x"
expect 1 "" build "$tmp/bad.nn" --emit=ir -o "$tmp/o/x"
expect 1 "" build "$tmp/bad.nn" --emit=ast -o "$tmp/o/x"
[ "$(cat "$tmp/o/x")" = old ] || fail "-o: file changed by a failed build"
[ "$(ls -A "$tmp/o")" = x ] || { fail "-o: stray files:"; ls -A "$tmp/o"; }

# The standard library is found without -I, also from a copy of the binary
# with no std/ next to it (the source tree's std/ is the fallback).
mkdir "$tmp/bin"
cp "$nnc" "$tmp/bin/nnc"
"$tmp/bin/nnc" check "$tmp/m.nn" -D B=2 || fail "copied binary: std not found"

# nnc run checks the input first, then builds, runs and removes the
# program, exiting with its status.
expect 1 "" run "$tmp/bad.nn" -- a b
if has_backend; then
  expect 0 "model: " run "$tmp/m.nn" -D B=2 -- info
  expect 2 "" run "$tmp/m.nn" -D B=2 -- frobnicate
  (cd "$tmp/o" && "$nnc" run "$tmp/m.nn" -D B=2 -- init --save w.safetensors) ||
    fail "nnc run init failed"
  [ -s "$tmp/o/w.safetensors" ] || fail "nnc run: the program did not run in the cwd"
  rm -f "$tmp/o/w.safetensors"
else
  expect 2 "'nnc run' is not implemented yet" run "$tmp/m.nn" -D B=2 -- a b
fi
expect 1 "the model has no loss" gradcheck "$tmp/m.nn" -D B=2
exit $status
