# nnc build on .nnir input: --emit=ir, --passes, --print-after, -v, and -o
# written atomically; nnc check on .nnir; nnc passes.
. "$(dirname "$0")/lib.inc"

expect 0 "canonicalize" passes
grep -q '^  canonicalize  constant folding' "$tmp/out" || fail "nnc passes: no summary line"

# check: silent on success.
expect 0 "" check "$tmp/ok.nnir"
[ ! -s "$tmp/out" ] && [ ! -s "$tmp/err" ] || fail "nnc check printed something on success"
# -x ir on a file without the extension.
cp "$tmp/ok.nnir" "$tmp/ok.txt"
expect 0 "" check -x ir "$tmp/ok.txt"

# --passes= runs nothing: the module is printed as read.
expect 0 "%2 = mul %0, %1 : f32[]" build "$tmp/ok.nnir" --emit=ir --passes=
# The default pipeline folds the constants.
expect 0 "constant {value = 6.0} : f32[]" build "$tmp/ok.nnir" --emit=ir
grep -q "mul %0, %1" "$tmp/out" && fail "default pipeline did not fold"
# The output parses back and is stable.
cp "$tmp/out" "$tmp/a.nnir"
expect 0 "" build "$tmp/a.nnir" --emit=ir
cmp -s "$tmp/out" "$tmp/a.nnir" || fail "canonicalize output is not a fixed point"

# --print-after: header, then the module; the dump parses back.
expect 0 "; ---- IR after canonicalize ----" build "$tmp/ok.nnir" --emit=ir --print-after=canonicalize --passes=canonicalize -o "$tmp/o.nnir"
sed 1d "$tmp/out" >"$tmp/dump.nnir"
cmp -s "$tmp/dump.nnir" "$tmp/o.nnir" || fail "--print-after dump differs from --emit=ir output"
expect 0 "" check "$tmp/dump.nnir"
run build "$tmp/ok.nnir" --emit=ir --print-after=all --passes=canonicalize,canonicalize -o "$tmp/o.nnir"
[ "$(grep -c '^; ---- IR after canonicalize ----$' "$tmp/out")" = 2 ] || fail "--print-after=all: expected 2 dumps"
# --print-loc is accepted (no loc on this input).
expect 0 "func @f" build "$tmp/ok.nnir" --emit=ir --print-loc

# -v: globals and functions on stderr.
run build "$tmp/ok.nnir" --emit=ir -v
[ "$rc" = 0 ] || fail "-v: exit $rc"
grep -q "globals: 0 params + 0 states, 0 values, 0 bytes" "$tmp/err" || fail "-v: no globals line"
grep -q "func @f: 1 arguments, 1 results" "$tmp/err" || fail "-v: no function line"
cat >"$tmp/p.nnir" <<'NNIR'
param @w : f32[3,4] = zeros
state @s : i64[2] = zeros
func @g(%x: f32[2,3]) -> (y: f32[2,4]) {
  %0 = matmul %x, @w : f32[2,4]
  return %0
}
NNIR
run build "$tmp/p.nnir" --emit=ir -v
grep -q "globals: 1 params + 1 states, 14 values, 64 bytes" "$tmp/err" || { fail "-v: wrong sizes"; cat "$tmp/err"; }

# -o: written whole, atomically; nothing left behind on error, and an
# existing file is kept when the build fails.
mkdir "$tmp/o"
expect 0 "" build "$tmp/ok.nnir" --emit=ir -o "$tmp/o/out.nnir"
run build "$tmp/ok.nnir" --emit=ir
cmp -s "$tmp/out" "$tmp/o/out.nnir" || fail "-o content differs from stdout"
echo old >"$tmp/o/out.nnir"
expect 1 "" build "$tmp/syntax.nnir" --emit=ir -o "$tmp/o/out.nnir"
[ "$(cat "$tmp/o/out.nnir")" = old ] || fail "-o: file changed by a failed build"
expect 1 "" build "$tmp/badtype.nnir" --emit=ir -o "$tmp/o/new.nnir"
run build "$tmp/ok.nnir" --emit=obj --target=nonsense-triple -o "$tmp/o/new.o"
[ "$rc" != 0 ] || fail "--emit=obj --target=nonsense-triple succeeded"
[ ! -e "$tmp/o/new.nnir" ] && [ ! -e "$tmp/o/new.o" ] || fail "-o: a file was left after an error"
[ "$(ls -A "$tmp/o")" = out.nnir ] || { fail "-o: stray files:"; ls -A "$tmp/o"; }
expect 1 "cannot write '$tmp/nodir/x.nnir'" build "$tmp/ok.nnir" --emit=ir -o "$tmp/nodir/x.nnir"
exit $status
