# Exit codes and messages of nnc's command line: --version, --help of each
# command, unknown flags, missing files, bad -D, pending features.
. "$(dirname "$0")/lib.inc"

expect 0 "nnc 0." --version
expect 0 "usage: nnc COMMAND" --help
expect 0 "usage: nnc COMMAND" help
for c in build check run gradcheck passes; do
  expect 0 "usage: nnc $c" $c --help
done
# Every flag of build is described in its help.
run build --help
for f in -o --emit= -x -D -I -O0 -v --passes= --print-after= --print-loc \
         --model --target= --cpu= --verify NNC_RUNTIME_DIR; do
  grep -qF -- "$f" "$tmp/out" || fail "nnc build --help does not describe '$f'"
done
run check --help
for f in -x -D -I --model; do
  grep -qF -- "$f" "$tmp/out" || fail "nnc check --help does not describe '$f'"
done

# Usage errors: exit 2.
expect 2 "" 
expect 2 "unknown command 'frobnicate'" frobnicate
expect 2 "unknown option '--frob'" --frob
expect 2 "unknown option '--frob' (see 'nnc build --help')" build "$tmp/ok.nnir" --frob
expect 2 "unknown option '--emit=ir'" check "$tmp/ok.nnir" --emit=ir
expect 2 "no input file" build --emit=ir
expect 2 "more than one input file" build "$tmp/ok.nnir" "$tmp/ok.nnir"
expect 2 "-o expects a file name" build "$tmp/ok.nnir" -o
expect 2 "--emit expects" build "$tmp/ok.nnir" --emit=pdf
expect 2 "-x expects nn or ir, got 'c'" build "$tmp/ok.nnir" -x c
expect 2 "nnc: error: unknown pass 'nope' (see 'nnc passes')" build "$tmp/ok.nnir" --emit=ir --passes=canonicalize,nope
expect 2 "unknown pass 'nope' in --print-after" build "$tmp/ok.nnir" --print-after=nope
expect 2 "cannot tell the language of" check "$tmp/ok.txt"
expect 2 "unexpected argument" passes extra
# -D syntax.
expect 2 "nnc: error: -D expects NAME=VALUE, got 'X'" check "$tmp/ok.nnir" -D X
expect 2 "nnc: error: -D expects NAME=VALUE, got '=3'" check "$tmp/ok.nnir" -D=3
expect 2 "nnc: error: -D expects NAME=VALUE, got 'N='" build "$tmp/ok.nnir" -DN=
expect 2 "nnc: error: -D expects NAME=VALUE, got '1N=2'" build "$tmp/ok.nnir" -D 1N=2
expect 2 "-D expects NAME=VALUE" check "$tmp/ok.nnir" -D

# Input errors: exit 1.
expect 1 "nnc: error: cannot open '$tmp/x.nn': No such file or directory" check "$tmp/x.nn"
expect 1 "nnc: error: cannot open '$tmp/x.nnir': No such file or directory" build "$tmp/x.nnir" --emit=ir
# .nnir errors come as file:line:col (the reader checks types as it goes;
# what only the verifier catches cannot be written as text).
expect 1 "syntax.nnir:3:1: error:" check "$tmp/syntax.nnir"
expect 1 "badtype.nnir:2:" check "$tmp/badtype.nnir"

# Native code (tests/e2e checks what it computes): the default names, the
# symbols, the header; without the backend, exit 2 with an honest message.
if has_backend; then
  expect 0 "define" build "$tmp/ok.nnir" --emit=llvm
  grep -q "@model_desc = .*constant" "$tmp/out" || fail "--emit=llvm: no descriptor"
  grep -q "define.*@model_f(" "$tmp/out" || fail "--emit=llvm: no @model_f"
  expect 0 "model_f" build "$tmp/ok.nnir" --emit=asm -O1
  (cd "$tmp" && "$nnc" build ok.nnir --emit=obj) || fail "--emit=obj failed"
  [ -s "$tmp/ok.o" ] && [ -s "$tmp/ok.h" ] || fail "--emit=obj: no ok.o and ok.h"
  grep -q "model_forward" "$tmp/ok.h" || fail "ok.h: no model_forward"
  (cd "$tmp" && "$nnc" build ok.nnir) || fail "--emit=exe failed"
  [ -x "$tmp/ok" ] || fail "--emit=exe: no executable 'ok'"
  expect 1 "target 'nonsense-triple'" build "$tmp/ok.nnir" --emit=obj \
    --target=nonsense-triple -o "$tmp/bad.o"
  [ ! -e "$tmp/bad.o" ] || fail "a failed --emit=obj left its file"
else
  expect 2 "nnc: error: --emit=obj is not implemented yet (backend pending)" build "$tmp/ok.nnir" --emit=obj
  expect 2 "nnc: error: --emit=exe is not implemented yet (backend pending)" build "$tmp/ok.nnir"
  expect 2 "nnc: error: --emit=llvm is not implemented yet" build "$tmp/ok.nnir" --emit=llvm
  expect 2 "nnc: error: --emit=asm is not implemented yet" build "$tmp/ok.nnir" --emit=asm
fi
expect 2 "--emit=ast needs a .nn input" build "$tmp/ok.nnir" --emit=ast

# Never a crash, whatever the arguments.
for args in "-" "--" "build --" "build -o" "build -x" "build -I" "check -I" \
            "build --emit" "build --emit=" "build --passes" "build --print-after=" \
            "build -O9 x.nn" "run" "run x.nn --" "build --model" "passes --help extra"; do
  run $args
  [ "$rc" -lt 128 ] || fail "nnc $args crashed (exit $rc)"
  [ "$rc" -ne 0 ] || [ "$args" = "passes --help extra" ] || fail "nnc $args: exit 0"
done
exit $status
