# nnc build --target/--cpu: objects and assembly for another architecture
# (every LLVM target is initialised, backend/target.c), the host's CPU
# overridden, an unknown triple, and an executable for a foreign target.
. "$(dirname "$0")/lib.inc"

if ! has_backend; then
  echo "SKIP: nnc was built without the backend (no native code)"
  exit 0
fi

# An elementwise kernel: vectorised with the target's registers.
cat >"$tmp/ew.nn" <<'NN'
model ew {
    input x: f32[64, 256]
    input y: f32[64, 256]
    let z = x * y + x
    output z
}
NN

# e_machine of an ELF object (bytes 18-19, little-endian), and its class
# (byte 4: 2 = 64-bit).
machine() { od -An -tu2 -j18 -N2 "$1" | tr -d ' '; }
elfclass() { od -An -tu1 -j4 -N1 "$1" | tr -d ' '; }
is_elf() { [ "$(od -An -c -N4 "$1" | tr -d ' ')" = '177ELF' ]; }

# check_obj FILE MACHINE WHAT: FILE is a 64-bit ELF object for MACHINE.
check_obj() {
  if [ ! -f "$1" ]; then fail "$3: no object written"; return; fi
  is_elf "$1" || { fail "$3: not an ELF file"; return; }
  [ "$(elfclass "$1")" = 2 ] || fail "$3: not a 64-bit ELF object"
  m=$(machine "$1")
  [ "$m" = "$2" ] || fail "$3: ELF machine $m, expected $2"
}

# AArch64 (EM_AARCH64 = 183), generic and Neoverse N1.
expect 0 "" build "$tmp/ew.nn" --emit=obj --target=aarch64-linux-gnu -o "$tmp/a.o"
check_obj "$tmp/a.o" 183 "--target=aarch64-linux-gnu"
expect 0 "" build "$tmp/ew.nn" --emit=obj --target=aarch64-linux-gnu --cpu=neoverse-n1 \
  -o "$tmp/n1.o"
check_obj "$tmp/n1.o" 183 "--target=aarch64-linux-gnu --cpu=neoverse-n1"
# RISC-V 64 (EM_RISCV = 243): any target LLVM was built with.
expect 0 "" build "$tmp/ew.nn" --emit=obj --target=riscv64-linux-gnu -o "$tmp/rv.o"
check_obj "$tmp/rv.o" 243 "--target=riscv64-linux-gnu"
# x86-64 named explicitly (EM_X86_64 = 62).
expect 0 "" build "$tmp/ew.nn" --emit=obj --target=x86_64-linux-gnu -o "$tmp/x.o"
check_obj "$tmp/x.o" 62 "--target=x86_64-linux-gnu"

# AArch64 assembly: NEON 4 x f32 vectors (v0.4s ...), fused multiply-add,
# and no x86 register anywhere.
expect 0 "" build "$tmp/ew.nn" --emit=asm --target=aarch64-linux-gnu --cpu=neoverse-n1
grep -Eq '\bv[0-9]+\.4s\b' "$tmp/out" || fail "aarch64 asm: no NEON v*.4s register"
grep -Eq '\bfmla\b' "$tmp/out" || fail "aarch64 asm: no fmla for x * y + x"
grep -Eq '%(xmm|ymm|zmm|rax|rsp)' "$tmp/out" && fail "aarch64 asm: x86 registers"
# Haswell: AVX2 (ymm), never AVX-512 (zmm), whatever the host is.
expect 0 "" build "$tmp/ew.nn" --emit=asm --target=x86_64-linux-gnu --cpu=haswell
grep -q 'ymm' "$tmp/out" || fail "--cpu=haswell asm: no ymm register"
grep -q 'zmm' "$tmp/out" && fail "--cpu=haswell asm: zmm (AVX-512) register"
grep -Eq '\bvfmadd' "$tmp/out" || fail "--cpu=haswell asm: no FMA (vfmadd)"
# The baseline x86-64 (SSE2): xmm only, so the CPU is what selects the
# width (not the host, which may have AVX-512).
expect 0 "" build "$tmp/ew.nn" --emit=asm --target=x86_64-linux-gnu --cpu=x86-64
grep -q 'xmm' "$tmp/out" || fail "--cpu=x86-64 asm: no xmm register"
grep -Eq '[yz]mm' "$tmp/out" && fail "--cpu=x86-64 asm: ymm/zmm (AVX) register"

# An unknown triple: one error line, exit 1, no object.
expect 1 "target 'bogus-foo-bar': unknown architecture 'bogus'" \
  build "$tmp/ew.nn" --emit=obj --target=bogus-foo-bar -o "$tmp/bogus.o"
[ "$(wc -l <"$tmp/err")" = 1 ] || { fail "unknown triple: not one error line"; cat "$tmp/err"; }
[ -e "$tmp/bogus.o" ] && fail "unknown triple: an object was written"

# An executable for another architecture cannot be linked here: exit 1,
# nothing written.
expect 1 "cannot link an executable for target" build "$tmp/ew.nn" --emit=exe --target=aarch64-linux-gnu -o "$tmp/ew-a64"
[ -e "$tmp/ew-a64" ] && fail "--emit=exe --target=aarch64: an executable was written"

exit $status
