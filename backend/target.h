/*
** This file contains the target description the backend generates code
** for: an LLVM target machine (the host CPU and its features by default,
** or a --target/--cpu override) and the two numbers the kernels are sized
** from, the vector width in floats and the number of vector registers.
*/
#ifndef NNC_TARGET_H
#define NNC_TARGET_H

#include <stdbool.h>

#include <llvm-c/TargetMachine.h>

typedef struct CgTarget {
  LLVMTargetMachineRef tm;
  char *triple;      /* LLVMDisposeMessage'd by cg_target_free */
  char *cpu;
  char *features;
  int vec_floats;    /* floats per vector register: 16 AVX-512, 8 AVX2, 4 SSE/NEON */
  int vec_regs;      /* architectural vector registers: 32 AVX-512/NEON, 16 otherwise */
  bool has_fma;      /* fused multiply-add instructions */
  bool is_host;      /* the host's architecture: its objects link and run here */
} CgTarget;

/* Creates the target machine (optimisation level aggressive, PIC).  A NULL
** triple means the host (then a NULL cpu/features mean the host CPU and
** its features); a NULL cpu elsewhere means "generic".  features is an
** LLVM feature string ("+avx2,+fma"); when NULL for a non-host CPU, the
** vector shape comes from a table of known CPU names.  Returns false and
** sets *err (free with LLVMDisposeMessage) on failure, e.g. for a triple
** whose architecture LLVM has no target for.  Every target LLVM was built
** with is initialised (not only the native one), so the triple may name
** another architecture ("aarch64-linux-gnu"); t->is_host then is false and
** the object cannot be linked into an executable here. */
bool cg_target_init(CgTarget *t, const char *triple, const char *cpu,
                    const char *features, char **err);
void cg_target_free(CgTarget *t);

/* The vector shape that an LLVM feature string and CPU name imply, for the
** triple's architecture (exposed for the tests). */
void cg_target_vector_shape(const char *triple, const char *cpu, const char *features,
                            int *vec_floats, int *vec_regs, bool *has_fma);

#endif
