# e2e: what `nnc build` writes for each --emit kind and what -v, -O and
# -o do with native code.
#   sh emit.sh NNC NNC_INTERP SOURCE_DIR
nnc=$1 interp=$2 root=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }
src=$root/examples/mlp_tiny.nn

# -v: the memory figures, the same as the executable's descriptor says.
"$nnc" build "$src" -v -o "$tmp/m" 2>"$tmp/err" || fail "build -v"
line=$(grep "^arena: " "$tmp/err")
echo "$line" | grep -q "^arena: [1-9][0-9]* bytes; parameters: [1-9][0-9]* bytes$" ||
  fail "-v: '$line'"
"$tmp/m" info >"$tmp/info" || fail "info"
ab=$(sed -n 's/^arena bytes: //p' "$tmp/info")
pb=$(sed -n 's/^parameter bytes: //p' "$tmp/info")
[ "$line" = "arena: $ab bytes; parameters: $pb bytes" ] ||
  fail "-v says '$line', info says arena $ab, parameters $pb"
# mlp_tiny's 4 parameters alone take 128+64+128+64 bytes (64-aligned).
[ "$pb" -ge 384 ] || fail "parameter bytes $pb < 384"
"$nnc" build "$src" --emit=ir -v -o /dev/null 2>"$tmp/err" || fail "build --emit=ir -v"
grep -q "^arena: [1-9][0-9]* bytes; parameters: [1-9][0-9]* bytes$" "$tmp/err" ||
  fail "--emit=ir -v: $(grep arena "$tmp/err")"

# Default names: exe from the input's name, obj NAME.o + NAME.h in the cwd.
(cd "$tmp" && "$nnc" build "$src") || fail "build (exe)"
[ -x "$tmp/mlp_tiny" ] || fail "no ./mlp_tiny"
(cd "$tmp" && "$nnc" build "$src" --emit=obj) || fail "build --emit=obj"
[ -s "$tmp/mlp_tiny.o" ] && [ -s "$tmp/mlp_tiny.h" ] || fail "no mlp_tiny.o/.h"
nm "$tmp/mlp_tiny.o" | grep -q " [RDT] mlp_tiny_desc$" || fail "mlp_tiny.o does not export mlp_tiny_desc"
nm "$tmp/mlp_tiny.o" | grep -q " T mlp_tiny_forward$" || fail "mlp_tiny.o does not export mlp_tiny_forward"

# asm and llvm go to stdout by default, or to -o.
"$nnc" build "$src" --emit=asm >"$tmp/s" || fail "--emit=asm"
grep -q "mlp_tiny_forward:" "$tmp/s" || fail "--emit=asm: no mlp_tiny_forward label"
"$nnc" build "$src" --emit=llvm -o "$tmp/m.ll" || fail "--emit=llvm -o"
grep -q "^define .*@mlp_tiny_forward(" "$tmp/m.ll" || fail "--emit=llvm: no @mlp_tiny_forward"
grep -q "^@mlp_tiny_desc = .*constant" "$tmp/m.ll" || fail "--emit=llvm: no descriptor"

# -O0 and -O3 compute the same.
"$nnc" build "$src" -O0 -o "$tmp/m0" || fail "build -O0"
"$tmp/m" init --save "$tmp/w.safetensors" --seed 3 || fail "init"
"$interp" npy "$tmp/x.npy" f32 4 4 || fail "nnc_interp npy"
for m in m m0; do
  "$tmp/$m" predict --weights "$tmp/w.safetensors" --input "$tmp/x.npy" \
    --output "$tmp/$m.npy" || fail "$m predict"
done
"$interp" cmp "$tmp/m0.npy" "$tmp/m.npy" 1e-5 1e-6 >/dev/null || fail "-O0 and -O3 differ"

# A target nnc cannot make code for is an error, and leaves no file.
"$nnc" build "$src" --emit=obj --target=nonsense-none-none -o "$tmp/bad.o" 2>"$tmp/err" &&
  fail "--target=nonsense accepted"
grep -q "nonsense-none-none" "$tmp/err" || fail "no target in: $(cat "$tmp/err")"
[ ! -e "$tmp/bad.o" ] && [ ! -e "$tmp/bad.h" ] || fail "failed build left files"
exit $status
